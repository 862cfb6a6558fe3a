import assert from 'node:assert/strict';
import { test } from 'node:test';
import { searchPets, searchStats } from '../src/search.ts';
import { seedStore } from '../src/store.ts';

test('search finds pets by every word of their name', () => {
  const store = seedStore(30);
  assert.deepEqual(searchPets(store, 'pet 12').map((p) => p.id), [12]);
  assert.equal(searchPets(store, 'pet').length, 30);
});

test('the name index is built once, not on every search (P95 latency)', () => {
  const store = seedStore(30);
  const before = searchStats.indexBuilds;
  for (let i = 0; i < 5; i++) searchPets(store, `pet ${i}`);
  assert.equal(searchStats.indexBuilds - before, 1);
});
