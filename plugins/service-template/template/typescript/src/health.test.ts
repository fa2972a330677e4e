import { test } from "node:test";
import assert from "node:assert/strict";
import { route } from "./health.js";

test("GET /health answers ok", () => {
  assert.deepEqual(route("GET", "/health"), [200, "ok"]);
  assert.equal(route("GET", "/")[0], 404);
});
