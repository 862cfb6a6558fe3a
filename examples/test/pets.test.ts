import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApp } from './helpers.ts';

test('a pet with an owner shows the owner name', async () => {
  const { url } = await startApp();
  const res = await fetch(`${url}/api/pets/1`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { id: 1, name: 'Pet 1', species: 'dog', ownerName: 'Owner 1' });
});

test('a stray (no owner) is shown with ownerName null, not a 500', async () => {
  const { url } = await startApp();
  const res = await fetch(`${url}/api/pets/5`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { id: 5, name: 'Pet 5', species: 'dog', ownerName: null });
});

test('an unknown pet is a 404', async () => {
  const { url } = await startApp();
  assert.equal((await fetch(`${url}/api/pets/9999`)).status, 404);
});
