// A tiny DOM builder. Text always goes in through text nodes (never innerHTML), so nothing
// the API returns can become markup.

/**
 * @param {string} tag
 * @param {Record<string, any> | null} [props] attributes; `on<event>` functions become listeners
 * @param {...any} children strings, nodes, arrays, or null/false (skipped)
 * @returns {HTMLElement}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'value') {
      /** @type {HTMLInputElement} */ (el).value = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/**
 * Puts `content` (children as `h` takes them) in place of what `el` holds: to draw one part
 * of a view again without the rest, so that the focus elsewhere stays where it is.
 * @param {HTMLElement} el
 * @param {any} content
 */
export function replaceContent(el, content) {
  el.replaceChildren();
  append(el, [content]);
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * A labelled form field. Its hint and error are tied to the input with aria-describedby,
 * and an error sets aria-invalid.
 * @param {{id: string, label: string, type?: string, hint?: string | null,
 *   error?: Node | Node[] | string | null, value?: string, attrs?: Record<string, any>,
 *   after?: Node | null, describedBy?: string}} f
 */
export function field(f) {
  const hintId = f.hint ? `${f.id}-hint` : null;
  const errorId = f.error ? `${f.id}-error` : null;
  const described = [f.describedBy, hintId, errorId].filter(Boolean).join(' ') || null;
  const input =
    f.type === 'select'
      ? h('select', { id: f.id, name: f.id, 'aria-describedby': described, 'aria-invalid': f.error ? 'true' : null, ...f.attrs })
      : h('input', {
          id: f.id,
          name: f.id,
          type: f.type || 'text',
          value: f.value ?? null,
          'aria-describedby': described,
          'aria-invalid': f.error ? 'true' : null,
          ...f.attrs,
        });
  return {
    input,
    node: h(
      'div',
      { class: f.error ? 'field has-error' : 'field' },
      h('label', { for: f.id }, f.label),
      f.hint ? h('p', { class: 'hint', id: hintId }, f.hint) : null,
      f.after ? h('div', { class: 'field-row' }, input, f.after) : input,
      f.error ? h('p', { class: 'error-text', id: errorId }, f.error) : null,
    ),
  };
}

/**
 * Reads an input's value by id (in the current view).
 * @param {string} id
 */
export function valueOf(id) {
  const el = /** @type {HTMLInputElement | null} */ (document.getElementById(id));
  return el ? el.value : '';
}

/**
 * Sets an input's or select's value by id: after a redraw that put back what was on screen
 * (App.update), for a value the page changed itself.
 * @param {string} id
 * @param {string} value
 */
export function setValue(id, value) {
  const el = /** @type {HTMLInputElement | null} */ (document.getElementById(id));
  if (el) el.value = value;
}
