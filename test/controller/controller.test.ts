// The controller's unit tests, in one file so the whole suite pays for one import of the
// controller and the core (on a loaded machine most of its time is that import, not the tests).
// Each case file registers its own describe blocks; world.ts is the fake world they drive.
import "./dispatch.cases.js";
import "./health.cases.js";
import "./signals.cases.js";
import "./reattach.cases.js";
import "./session.cases.js";
