// Starts `dx-batch worker` from a compiled dist/ directory (argv: <dist> worker …), for the queue
// tests: the same code as `bin/dx-batch.js worker`, without the rest of the CLI.
import path from "node:path";
import { pathToFileURL } from "node:url";

const [, , dist, ...rest] = process.argv;
const m = await import(pathToFileURL(path.join(dist, "cli", "worker-main.js")).href);
process.exitCode = await m.workerMain([process.argv[0], "dx-batch", ...rest]);
