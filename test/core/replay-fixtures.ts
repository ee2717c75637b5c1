// Shared by the ledger recorder and the replay test. The fixtures under test/fixtures/ledgers/
// name no path of the machine that recorded them: each of these stands for one. The core never
// reads a path, it only carries it, so the fold of the tokenised ledger equals the tokenised
// snapshot exactly as the fold of the original equalled the original.
export const FIXTURE_ROOT_TOKEN = "/__DX_FIXTURE_ROOT__";
export const FIXTURE_REPO_TOKEN = "/__DX_REPO__";
export const FIXTURE_NODE_TOKEN = "/__DX_NODE__";

/** Replace the recording world's temp root, this checkout and the node binary by their tokens. */
export function tokenise(text: string, root: string, repo: string, node: string): string {
  return text.split(root).join(FIXTURE_ROOT_TOKEN).split(repo).join(FIXTURE_REPO_TOKEN).split(node).join(FIXTURE_NODE_TOKEN);
}
