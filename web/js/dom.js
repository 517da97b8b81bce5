// # Building elements without markup
//
// Every panel builds its DOM with `el(tag, props, ...children)`: properties are set as
// properties (`textContent`, never `innerHTML`), so a player's name or a server string is always
// text, whatever it contains — the lecture's "validate server data" on the page's side.

/** `el('p', {className: 'x', dataset: {role: 'y'}}, 'text', child)`: a new element. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else node[k] = v;
  }
  node.append(...children);
  return node;
}
