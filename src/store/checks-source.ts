import { Type } from "@sinclair/typebox";
import type { EventName } from "../core/events.js";
import { typeboxChecksModule, type PrecompiledCheck } from "../schema/typebox-checks.js";
import { storeShapes } from "./shapes.js";

// The source of src/store/checks.generated.ts: every check the store runs on what it reads back,
// precompiled from src/store/shapes.ts. Only the generator and the drift test load this module
// (and with it TypeBox); src/contract/published-schemas.ts lists it with the other generated files.

export const STORE_CHECKS_FILE = "src/store/checks.generated.ts";

/** `wave_created` → `isWaveCreated`: the exported name of an event's check. */
export const eventCheckName = (e: EventName): string => `is${e.replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase())}`;

export function storeChecksModule(): string {
  const s = storeShapes(Type);
  const checks: PrecompiledCheck[] = [
    ...(Object.keys(s.events) as EventName[]).map((e) => ({ name: eventCheckName(e), schema: s.events[e], type: `EventShapeOf<"${e}">` })),
    { name: "isWaveState", schema: s.waveState, type: 'ShapeOf<"waveState">' },
    { name: "isControllerLockFile", schema: s.controllerLock, type: 'ShapeOf<"controllerLock">' },
    { name: "isTicket", schema: s.ticket, type: 'ShapeOf<"ticket">' },
    { name: "isCancelRequest", schema: s.cancelRequest, type: 'ShapeOf<"cancelRequest">' },
    { name: "isTrackerLockHolder", schema: s.trackerLockHolder, type: 'ShapeOf<"trackerLockHolder">' },
    { name: "isJobPidRecord", schema: s.jobPid, type: 'ShapeOf<"jobPid">' },
    { name: "isItemClaim", schema: s.itemClaim, type: 'ShapeOf<"itemClaim">' },
    { name: "isLeaseHolder", schema: s.leaseHolder, type: 'ShapeOf<"leaseHolder">' },
    { name: "isApprovalRecord", schema: s.approval, type: 'ShapeOf<"approval">' },
  ];
  return typeboxChecksModule(checks, { source: "src/store/shapes.ts", imports: ['import type { EventShapeOf, ShapeOf } from "./shapes.js";'] });
}
