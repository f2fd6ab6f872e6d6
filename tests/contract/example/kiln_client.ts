// A kiln client generated from openapi.yaml (docs/api.md, "A generated client"): the types
// come from openapi-typescript, the calls go through openapi-fetch, and tsc checks every
// path, parameter, body and answer against the document. tests/contract/run.sh compiles it
// and runs it against a started server, so a change to the document that breaks these calls
// fails the contract test at compile time. It makes the web page's calls: a session, the
// models, a job, its progress, the gallery, the queue, and a typed error.
import createClient from "openapi-fetch";
import type { components, paths } from "./kiln-api.js";

type Job = components["schemas"]["Job"];

declare const process: { env: Record<string, string | undefined> };

const kiln = createClient<paths>({ baseUrl: process.env.KILN_URL ?? "http://127.0.0.1:8080" });

function check<T>(what: string, result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) {
    throw new Error(`${what}: ${result.response.status} ${JSON.stringify(result.error)}`);
  }
  return result.data;
}

async function main(): Promise<void> {
  const models = check("GET /v1/models", await kiln.GET("/v1/models"));
  const limits = check("GET /v1/limits", await kiln.GET("/v1/limits"));
  // Model is a union discriminated by task: only a generate model has prompts.
  const generator = models.find((m) => m.task === "generate");
  if (!generator || generator.task !== "generate") throw new Error("no generate model");
  const prompt = generator.prompts[0] ?? "";

  const key = process.env.KILN_API_KEY;
  const session = check(
    "POST /v1/sessions",
    await kiln.POST("/v1/sessions", key ? { headers: { Authorization: `Bearer ${key}` } } : {}),
  );
  const headers = { Authorization: `Bearer ${session.token}` };

  const accepted = check(
    "POST /v1/jobs",
    await kiln.POST("/v1/jobs", {
      headers,
      body: { model: generator.name, input: { prompt }, params: { steps: 2, seed: 42, count: 2 } },
    }),
  );
  let job: Job;
  for (;;) {
    job = check("GET /v1/jobs/{id}", await kiln.GET("/v1/jobs/{id}", { headers, params: { path: { id: accepted.id } } }));
    if (job.status !== "queued" && job.status !== "running") break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (job.status !== "succeeded") throw new Error(`job ${job.id}: ${job.status} ${JSON.stringify(job.error)}`);
  // Job is discriminated by task: a generate job's params always hold the seed used.
  const seed = job.task === "generate" ? job.params.seed : undefined;

  const gallery = check("GET /v1/gallery", await kiln.GET("/v1/gallery", { headers, params: { query: { limit: 10 } } }));
  const queue = check("GET /v1/queue", await kiln.GET("/v1/queue", { headers }));
  const missing = await kiln.GET("/v1/jobs/{id}", { headers, params: { path: { id: "0".repeat(32) } } });
  const code = missing.error?.error.code; // typed: "not_found"
  const gone = await kiln.DELETE("/v1/sessions/current", { headers });

  console.log(
    `example client: ${models.length} models, ${limits.max_queued} queued jobs allowed, ` +
      `job ${job.id} ${job.status} (seed ${seed}, ${job.outputs.length} outputs), ` +
      `${gallery.items.length} gallery items, queue ${queue.queued}/${queue.running}, ` +
      `unknown job: ${missing.response.status} ${code}, session deleted: ${gone.response.status}`,
  );
  if (code !== "not_found" || gone.response.status !== 204 || seed !== 42 || gallery.items.length !== 2) {
    throw new Error("the generated client saw unexpected answers");
  }
}

main().catch((e: unknown) => {
  console.error(e);
  throw e;
});
