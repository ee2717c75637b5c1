import type { EventName, WaveEvent } from "../events.js";
import type { Tx } from "../tx.js";

/** The event of one kind. */
export type EventOf<K extends EventName> = Extract<WaveEvent, { event: K }>;

/** What one kind of event does to the wave, inside a step's transaction. */
export type Handler<K extends EventName> = (tx: Tx, e: EventOf<K>) => void;

/** One handler per event kind: an event without a handler is a compile error (cf. Temporal's Activator). */
export type HandlerTable = { [K in EventName]: Handler<K> };
