/**
 * Formatting for the sidebar that never throws: missing or malformed values show as a dash
 * instead of raising a RangeError ("Invalid time value") and blanking the panel.
 */

/** A timestamp as local date and time, or `—` when it is missing or not a date. */
export function formatDate(value: unknown): string {
  if (value === null || value === undefined || value === '') {
    return '—';
  }
  const date = value instanceof Date ? value : new Date(text(value));
  if (Number.isNaN(date.getTime())) {
    return '—';
  }
  try {
    return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  } catch {
    return date.toISOString();
  }
}

/** A duration in seconds as `1.2 s` / `3 min 4 s`, or `—`. */
export function formatDuration(seconds: unknown): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    return '—';
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

/** A row count with thousands separators, or `—`. */
export function formatCount(value: unknown): string {
  return typeof value === 'number' && Number.isFinite(value) ? value.toLocaleString() : '—';
}

/** Any value as display text: strings as they are, objects as JSON, missing as `fallback`. */
export function text(value: unknown, fallback = ''): string {
  if (value === null || value === undefined) {
    return fallback;
  }
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return value.toString();
  }
  return JSON.stringify(value);
}
