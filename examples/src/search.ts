import type { Pet, Store } from './store.ts';

/** How many times the name index was built (exposed for tests and metrics). */
export const searchStats = { indexBuilds: 0 };

function buildIndex(store: Store): Map<string, Pet[]> {
  searchStats.indexBuilds++;
  const index = new Map<string, Pet[]>();
  for (const pet of store.pets.values()) {
    for (const word of pet.name.toLowerCase().split(/\s+/)) {
      const list = index.get(word) ?? [];
      list.push(pet);
      index.set(word, list);
    }
  }
  return index;
}

/** GET /api/pets/search?q=... : pets whose name contains every query word. */
export function searchPets(store: Store, q: string): Pet[] {
  const index = buildIndex(store);
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return [];
  const [first, ...rest] = words;
  return (index.get(first!) ?? []).filter((pet) => rest.every((w) => (index.get(w) ?? []).includes(pet)));
}
