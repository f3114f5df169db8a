// Calls to the app's API with the session cookie, its CSRF token and the page's language.

// The service worker's copies of the member's pages (see sw.js).
export const PAGES_CACHE = "kopilka-pages";

export async function forgetPages() {
  if ("caches" in window) await caches.delete(PAGES_CACHE);
}

export function words() {
  const node = document.getElementById("words");
  return node ? JSON.parse(node.textContent) : {};
}

export function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (_, key) => (key in values ? String(values[key]) : ""));
}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function api(method, path, body, extra = {}) {
  const headers = {
    Accept: "application/json",
    "Accept-Language": document.documentElement.lang,
    ...extra,
  };
  const csrf = document.querySelector('meta[name="csrf-token"]');
  if (csrf) headers["X-CSRF-Token"] = csrf.content;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// The message to show for a failed call: the bad field's message, else the title.
export function problemText(error, w) {
  if (error && error.status === 429) return w.too_many;
  const problem = error && error.problem;
  if (problem && problem.title) return problem.title;
  return w.error_generic;
}
