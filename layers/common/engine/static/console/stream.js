// The live stream: one WebSocket for every order the console follows. Each order is (re)joined
// with {"action":"subscribe","orderId","fromSeq"}: fromSeq is the last seq seen, so a reconnect
// replays exactly what was missed. Frames are handed on as they come; the order model drops a
// seq it already has (a replay overlapping the live stream) and asks for a replay on a gap.

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const GIVE_UP_AFTER = 6; // refused upgrades in a row: a wrong or revoked key, or no API

export class Stream {
  /**
   * @param {object} handlers
   *   onFrame(frame): a status frame {orderId, seq, status, at, ...}
   *   onError(error): an error frame's {code, message, field?}
   *   onState(state, detail): "connecting" | "live" | "reconnecting" | "refused" | "closed"
   *   lastSeq(orderId): the last seq the console holds for that order (0: none)
   *   isDone(orderId): whether the order is terminal (no need to follow after a reconnect)
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.url = "";
    this.key = "";
    this.socket = null;
    this.following = new Set();
    this.failures = 0;
    this.timer = null;
    this.wasOpen = false;
    this.opens = 0; // connections opened so far (the browser test checks a reconnect happened)
  }

  configure(url, key) {
    const changed = url !== this.url || key !== this.key;
    this.url = url;
    this.key = key;
    if (changed) this.close();
  }

  /** Follow an order: subscribe now if connected, else connect (the open subscribes it). */
  follow(orderId) {
    this.following.add(orderId);
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.subscribe(orderId);
    else this.connect();
  }

  /** Ask again for everything after `fromSeq` (a gap was seen). */
  replay(orderId) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.subscribe(orderId);
  }

  subscribe(orderId) {
    const fromSeq = this.handlers.lastSeq(orderId);
    this.socket.send(JSON.stringify({ action: "subscribe", orderId, fromSeq }));
  }

  connect() {
    if (!this.url || !this.key || this.socket || this.timer) return;
    const url = new URL(this.url);
    url.searchParams.set("apiKey", this.key);
    this.handlers.onState(this.failures ? "reconnecting" : "connecting");
    let socket;
    try {
      socket = new WebSocket(url.toString());
    } catch (exc) {
      this.handlers.onState("refused", exc.message);
      return;
    }
    this.socket = socket;
    this.wasOpen = false;
    socket.addEventListener("open", () => {
      this.failures = 0;
      this.wasOpen = true;
      this.opens += 1;
      this.handlers.onState("live");
      for (const orderId of this.following) {
        if (this.handlers.isDone(orderId)) this.following.delete(orderId);
        else this.subscribe(orderId);
      }
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && frame.error && !frame.status) this.handlers.onError(frame.error);
      else if (frame && frame.orderId && Number.isInteger(frame.seq)) {
        this.handlers.onFrame(frame);
        if (this.handlers.isDone(frame.orderId)) this.following.delete(frame.orderId);
      }
    });
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return; // closed on purpose (configure, close)
      this.socket = null;
      if (!this.wasOpen) this.failures += 1;
      const pending = [...this.following].some((id) => !this.handlers.isDone(id));
      // An upgrade refused (401/403) looks like any failed connect to a page: the app asks
      // the HTTP API about the key to say which it was.
      if (this.failures >= GIVE_UP_AFTER || (!this.wasOpen && !pending)) {
        this.handlers.onState("refused");
        return;
      }
      if (!pending) {
        this.handlers.onState("closed");
        return;
      }
      if (!this.wasOpen) this.handlers.onState("reconnecting", "failed");
      else this.handlers.onState("reconnecting");
      const delay = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
      this.timer = setTimeout(() => {
        this.timer = null;
        this.connect();
      }, delay);
    });
  }

  /** Reconnect now (after the user fixed the key, or pressed "Reconnect"). */
  retry() {
    this.failures = 0;
    this.close(); // an open socket too: the key may have changed its standing since it opened
    this.connect();
  }

  /** Drop the socket on purpose (tests and the user's "Forget key" use it too). */
  close() {
    clearTimeout(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close();
  }

  /** Break the connection as a network would (for tests: the reconnect must resume). */
  drop() {
    if (this.socket) this.socket.close(4000, "dropped");
  }
}
