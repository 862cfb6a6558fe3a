import type { Pet, Store } from './store.ts';

export interface PetView {
  id: number;
  name: string;
  species: Pet['species'];
  ownerName: string | null;
}

/** GET /api/pets/:id */
export function getPet(store: Store, id: number): PetView | undefined {
  const pet = store.pets.get(id);
  if (!pet) return undefined;
  return { id: pet.id, name: pet.name, species: pet.species, ownerName: pet.owner!.name };
}
