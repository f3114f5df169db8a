// The one-time app link: exchange the token in the URL's fragment for a session.
import { api } from "./api.js";

export async function start() {
  const token = location.hash.slice(1);
  history.replaceState(null, "", location.pathname); // the token leaves the address bar
  try {
    if (!token) throw new Error("no token");
    await api("POST", "/api/v1/app/sign-in/link", { token });
    location.replace("/app/");
  } catch {
    document.getElementById("link-error").hidden = false;
    document.getElementById("link-fallback").hidden = false;
  }
}
