// Compiled (`tsc --noEmit --strict`) against the types openapi-typescript generates from the
// served description, by tests/tests/generated_clients.rs: the names and shapes a TypeScript
// program would use.
import type { components, operations, paths } from "./api";

type Job = components["schemas"]["JobView"];
export const statuses: Job["status"][] = ["uploading", "queued", "converting", "done", "failed"];
export function progressOf(job: Job): number {
  return job.status === "done" ? 100 : job.progress ?? 0;
}
type Accepted = paths["/upload"]["post"]["responses"][202]["content"]["application/json"];
export const accepted: Accepted = { job_id: "x", status_url: "/jobs/x", download_url: "/jobs/x/audio" };
type NewToken = operations["create_token"]["responses"][201]["content"]["application/json"];
export const created: NewToken = { id: "a", name: "n", token: "mp3e_x", created_at: 1, expires_at: null };
type Failure = components["schemas"]["ErrorBody"];
export const failure: Failure = { error: "not found", detail: "no such resource" };
type Formats = operations["list_formats"]["responses"][200]["content"]["application/json"];
export const formats: Formats = [{ format: "mp3", codec: "lame", extension: "mp3", content_type: "audio/mpeg" }];
