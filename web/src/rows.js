// Keyed list rows, updated in place so an audio element survives later snapshots.

export function upsertRow(list, key, attr, build) {
  let row = list.querySelector(`li[${attr}="${CSS.escape(key)}"]`);
  if (!row) {
    row = document.createElement('li');
    row.setAttribute(attr, key);
    build(row);
  }
  return row;
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === 'class') node.className = value;
    else if (name in node && typeof value !== 'string') node[name] = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

export function when(value) {
  const date = value && typeof value.toDate === 'function' ? value.toDate() : value instanceof Date ? value : null;
  return date ? date.toLocaleString() : '';
}

export function millis(value) {
  if (value && typeof value.toMillis === 'function') return value.toMillis();
  if (value instanceof Date) return value.getTime();
  return Number.MAX_SAFE_INTEGER; // not written yet: newest
}

// Keep rows in the order of `keys` (newest first).
export function order(list, attr, keys) {
  keys.forEach((key, index) => {
    const row = list.querySelector(`li[${attr}="${CSS.escape(key)}"]`);
    if (row && list.children[index] !== row) list.insertBefore(row, list.children[index] || null);
  });
}
