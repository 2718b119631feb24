// openai.mjs - starts the scripted OpenAI-compatible server
// (fixtures/openai-server.mjs, which documents the script) for an e2e test:
//
//   const llm = await startOpenAI({ chat: [{ content: 'hi' }] }, { apiKey: 'sk-...' });
//   ... aosd with --llm-base-url llm.url --llm-model m, AOS_LLM_API_KEY ...
//   const got = await llm.requests();   // what aosd sent: messages, tools, headers
//   await llm.script({ chat: [...] });  // new steps, same server
//   llm.stop();
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURE = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures/openai-server.mjs');

export async function startOpenAI(script = {}, { apiKey } = {}) {
  const env = { ...process.env, PORT: '0', OPENAI_SCRIPT_JSON: JSON.stringify(script) };
  delete env.OPENAI_SCRIPT;
  if (apiKey) env.API_KEY = apiKey;
  else delete env.API_KEY;
  const proc = spawn(process.execPath, [FIXTURE], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^(\d+)\n/);
      if (m) resolve(Number(m[1]));
    });
    proc.on('exit', (code) => reject(new Error(`openai-server exited ${code}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    port,
    url: `${base}/v1`,
    proc,
    async requests() {
      return (await fetch(`${base}/_requests`)).json();
    },
    async clearRequests() {
      await fetch(`${base}/_requests`, { method: 'DELETE' });
    },
    async script(s) {
      const r = await fetch(`${base}/_script`, { method: 'POST', body: JSON.stringify(s) });
      if (!r.ok) throw new Error(`openai-server refused the script: ${await r.text()}`);
    },
    stop() {
      proc.stdin.end();
      proc.kill();
    },
  };
}
