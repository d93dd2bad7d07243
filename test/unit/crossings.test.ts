import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CrossingCounter, allocate } from '../../lib';

test('CrossingCounter counts the calls into one native object, methods and accessors, until closed', () => {
  using memory = allocate(4096);
  const other = allocate(4096);
  const counter = new CrossingCounter().watch(memory.handle, memory.handle);
  assert.equal(memory.length, 4096); // one accessor
  void memory.address; // another
  void other.address; // not watched
  assert.equal(counter.count, 2);
  counter.reset();
  other.close();
  assert.equal(counter.count, 0);
  memory.close(); // a method
  assert.equal(counter.count, 1);
  counter.close();
  assert.equal(Object.getOwnPropertyNames(memory.handle).length, 0, 'the object has its own methods back');
  void memory.closed;
  assert.equal(counter.count, 1);
});
