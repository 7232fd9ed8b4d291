// Must NOT compile: a job status the API does not have (tests/tests/generated_clients.rs
// checks that tsc refuses it, so the generated types are not `any`).
import type { components } from "./api";

export const status: components["schemas"]["JobStatus"] = "finished";
