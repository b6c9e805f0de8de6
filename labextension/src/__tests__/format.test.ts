import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatCount, formatDate, formatDuration, text } from '../format';

void test('dates that are missing or malformed show a dash instead of throwing', () => {
  for (const value of [null, undefined, '', 'not a date', '2026-13-45T99:99', {}, NaN]) {
    assert.equal(formatDate(value), '—');
  }
  assert.notEqual(formatDate('2026-11-30T20:38:53+00:00'), '—');
  assert.notEqual(formatDate(new Date(0)), '—');
});

void test('durations and counts', () => {
  assert.equal(formatDuration(3.25), '3.3 s');
  assert.equal(formatDuration(125), '2 min 5 s');
  assert.equal(formatDuration(null), '—');
  assert.equal(formatDuration(-1), '—');
  assert.equal(formatCount(undefined), '—');
  assert.equal(formatCount(0), '0');
});

void test('text never prints [object Object]', () => {
  assert.equal(text({ a: 1 }), '{"a":1}');
  assert.equal(text(undefined, 'x'), 'x');
  assert.equal(text(3), '3');
});
