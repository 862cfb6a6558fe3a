// In-memory data, seeded for the dev server and the tests.
export interface Owner {
  id: number;
  name: string;
}

export interface Pet {
  id: number;
  name: string;
  species: 'cat' | 'dog' | 'bird' | 'fish';
  /** Strays in the shelter have no owner yet. */
  owner?: Owner;
}

export interface Payment {
  transactionId: string;
  customerId: string;
  amountCents: number;
}

export interface Store {
  pets: Map<number, Pet>;
  payments: Payment[];
}

export function seedStore(petCount = 50): Store {
  const pets = new Map<number, Pet>();
  const species = ['cat', 'dog', 'bird', 'fish'] as const;
  for (let id = 1; id <= petCount; id++) {
    const pet: Pet = { id, name: `Pet ${id}`, species: species[id % species.length]! };
    // Every fifth pet is a stray with no owner.
    if (id % 5 !== 0) pet.owner = { id: 100 + id, name: `Owner ${id}` };
    pets.set(id, pet);
  }
  return { pets, payments: [] };
}
