// The invite screen: share the link (the QR code and the friends are drawn by the server).
import { setupShare } from "./share.js";

export function start(w) {
  setupShare(w);
}
