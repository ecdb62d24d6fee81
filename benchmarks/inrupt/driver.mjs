// A long-lived driver for Inrupt's libraries: universalAccess, so that the access benchmark can
// time its grants and revokes without Node's start-up or the login in the figures; and
// session.fetch, so that the interop test can be a vendor whose every call is Inrupt's.
//
// Protocol: one JSON command per line on stdin, one JSON answer per line on stdout.
//   {"op":"login","id":..,"secret":..,"issuer":..}    -> {"ok":true,"webid":..}
//   {"op":"grant"|"revoke","resource":URL,"agent":WEBID}
//       -> {"ok":true,"ms":..,"requests":..,"methods":{"GET":n,..},"result":<AccessModes>|null}
//   {"op":"fetch","method":..,"url":..,"headers":{..},"body":<base64>|null}
//       -> {"ok":true,"status":..,"url":..,"headers":[[name,value],..],"body":<base64>}
//   {"op":"quit"}                                      -> {"ok":true}, then exit
// Any failure answers {"ok":false,"error":".."} and the driver keeps reading.
// Only answers go to stdout; set INRUPT_DRIVER_TRACE=1 to see each request on stderr.

import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { universalAccess } from "@inrupt/solid-client";
import { Session } from "@inrupt/solid-client-authn-node";

// stdout carries the protocol alone: anything a library logs goes to stderr.
for (const name of ["log", "info", "debug"]) {
  console[name] = (...args) => console.error(...args);
}

const trace = process.env.INRUPT_DRIVER_TRACE === "1";
let session = null;
let counting = null; // {requests, methods} while a timed call runs

// Every request the library sends goes through here, so the count is the library's own.
async function countingFetch(input, init) {
  const method = (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
  const url = typeof input === "string" ? input : input.url ?? String(input);
  if (counting) {
    counting.requests += 1;
    counting.methods[method] = (counting.methods[method] ?? 0) + 1;
  }
  const response = await session.fetch(input, init);
  if (trace) console.error(`inrupt-driver: ${method} ${url} -> ${response.status}`);
  return response;
}

async function login({ id, secret, issuer }) {
  session = new Session();
  await session.login({ clientId: id, clientSecret: secret, oidcIssuer: issuer });
  if (!session.info.isLoggedIn) throw new Error("login did not complete");
  return { ok: true, webid: session.info.webId };
}

async function setRead({ resource, agent }, read) {
  if (!session?.info.isLoggedIn) throw new Error("not logged in: send a login command first");
  counting = { requests: 0, methods: {} };
  const start = performance.now();
  try {
    const result = await universalAccess.setAgentAccess(resource, agent, { read }, {
      fetch: countingFetch,
    });
    const ms = performance.now() - start;
    return { ok: true, ms, requests: counting.requests, methods: counting.methods,
             result: result ?? null };
  } finally {
    counting = null;
  }
}

// One request through session.fetch, as an application on Inrupt's client sends it: the
// library adds its own Authorization and DPoP headers.
async function sessionFetch({ method, url, headers, body }) {
  if (!session?.info.isLoggedIn) throw new Error("not logged in: send a login command first");
  const response = await session.fetch(url, {
    method, headers: headers ?? {}, redirect: "manual",
    body: body == null ? undefined : Buffer.from(body, "base64"),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  if (trace) console.error(`inrupt-driver: ${method} ${url} -> ${response.status}`);
  return { ok: true, status: response.status, url: response.url || url,
           headers: [...response.headers.entries()], body: bytes.toString("base64") };
}

async function handle(command) {
  switch (command.op) {
    case "login": return login(command);
    case "fetch": return sessionFetch(command);
    case "grant": return setRead(command, true);
    case "revoke": return setRead(command, false);
    default: throw new Error(`unknown op: ${JSON.stringify(command.op)}`);
  }
}

function answer(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let command;
  try {
    command = JSON.parse(line);
  } catch (error) {
    answer({ ok: false, error: `not JSON: ${error.message}` });
    continue;
  }
  if (command.op === "quit") {
    answer({ ok: true });
    break;
  }
  try {
    answer(await handle(command));
  } catch (error) {
    answer({ ok: false, error: String(error?.message ?? error) });
  }
}
// The session keeps timers for token renewal: leave without waiting for them.
process.exit(0);
