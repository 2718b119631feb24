/* test_upstream.c - the MCP client against real servers.
 *
 * - server-everything (the reference server) over stdio and over its own
 *   Streamable HTTP, through tests/tools/mcp-server.sh;
 * - the official SDK's legacy HTTP+SSE server (tests/e2e/fixtures/
 *   legacy-sse-server.mjs);
 * - small inline node servers for what a reference server will not do on
 *   demand: never answer, die mid-call, print garbage, call back into the
 *   client, expire a session, close an event stream early, announce a
 *   foreign endpoint.
 * Every wait is bounded (wait_for) and every child is stopped (the
 * inline servers also exit when their stdin closes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpc/httpc.h"
#include "upstream/internal.h" /* aos__up_lsse_endpoint */
#include "upstream/upstream.h"
#include "uvtest.h"

/* ---- inline servers ------------------------------------------------------ */

/* stdio: tools/call "hang" never answers, "ask" asks us for a sampling and
 * answers with what we said, "garbage" prints junk (and a 17 MiB line) first;
 * notifications/cancelled is echoed back as test/cancelled. FAKE_VERSION
 * overrides the protocol version it answers. */
static const char fake_stdio_js[] =
    "const out=m=>process.stdout.write(JSON.stringify(m)+'\\n');let ask=null;"
    "require('readline').createInterface({input:process.stdin}).on('line',l=>{"
    " let m;try{m=JSON.parse(l)}catch(e){return}"
    " const name=m.params&&m.params.name;"
    " if(m.method==='initialize')return out({jsonrpc:'2.0',id:m.id,result:{protocolVersion:"
    "  process.env.FAKE_VERSION||m.params.protocolVersion,capabilities:{tools:{}},"
    "  serverInfo:{name:'fake-stdio',version:'1.0'},instructions:'be nice'}});"
    " if(m.method==='notifications/cancelled')"
    "  return out({jsonrpc:'2.0',method:'test/cancelled',params:m.params});"
    " if(m.method==='notifications/initialized')return;"
    " if(m.id==='s1'&&ask!==null){out({jsonrpc:'2.0',id:ask,result:{content:[{type:'text',"
    "  text:JSON.stringify(m.result)}]}});ask=null;return}"
    " if(m.method==='tools/call'&&name==='hang')return;"
    " if(m.method==='tools/call'&&name==='deaf'){out({jsonrpc:'2.0',id:m.id,result:{ok:true}});"
    "  process.stdin.destroy();require('fs').closeSync(0);setInterval(()=>{},1000);return}"
    " if(m.method==='tools/call'&&name==='ask'){ask=m.id;return out({jsonrpc:'2.0',id:'s1',"
    "  method:'sampling/createMessage',params:{messages:[{role:'user',content:{type:'text',"
    "  text:'hi'}}],maxTokens:5}})}"
    " if(m.method==='tools/call'&&name==='garbage'){process.stdout.write('this is not json\\n"
    "{\"half\":\\n'+'x'.repeat(17*1024*1024)+'\\n\\n  \\n\\u0000\\u0001\\n');"
    "  return out({jsonrpc:'2.0',id:m.id,result:{ok:true}})}"
    " if(m.method==='tools/call'&&name==='echo')"
    "  return out({jsonrpc:'2.0',id:m.id,result:m.params.arguments});"
    " if(m.method==='test/meta')return out({jsonrpc:'2.0',id:m.id,result:"
    "  {meta:(m.params&&m.params._meta)||null,params:m.params===undefined?null:m.params}});"
    " if(m.method&&m.id!==undefined)"
    "  out({jsonrpc:'2.0',id:m.id,error:{code:-32601,message:'no '+m.method}});"
    "});";

/* Streamable HTTP, protocol 2025-06-18: tools "json" (application/json
 * answer), "sse" (notification then answer on an event stream), "ask"
 * (sampling request on the stream, answered with what we POST back), "poll"
 * (closes the stream after a priming event; the answer comes on the GET
 * resumed with Last-Event-ID), "expire" (forgets every session once: 404),
 * "err" (500), "rpcerr" (400 with a JSON-RPC error), "leak" (502, a long
 * JSON-RPC error holding the token), "stats". Requires the
 * Authorization and X-Api headers, and the protocol version header. */
static const char fake_http_js[] =
    "const http=require('http');const sessions=new Set();let n=0,expired=0,asks={},polls={};"
    "const st={deletes:0,gets:0,resumes:0,cancelled:[]};"
    "const sse=r=>r.writeHead(200,{'Content-Type':'text/event-stream'});"
    "const ev=(r,m,id)=>r.write((id?'id: '+id+'\\n':'')+'data: '+JSON.stringify(m)+'\\n\\n');"
    "const srv=http.createServer((q,r)=>{let b='';q.on('data',d=>b+=d);q.on('end',()=>{"
    " if(q.headers.authorization!=='Bearer s3cret'||q.headers['x-api']!=='k1'){r.writeHead(401);"
    "  return r.end('who are you')}"
    " const s=q.headers['mcp-session-id'];"
    " if(q.method==='DELETE'){if(sessions.delete(s))st.deletes++;r.writeHead(200);return r.end()}"
    " if(q.method==='GET'){if(!sessions.has(s)){r.writeHead(404);return r.end()}"
    "  const last=q.headers['last-event-id'];"
    "  if(last&&polls[last]){st.resumes++;sse(r);ev(r,polls[last],last+'-2');return r.end()}"
    "  st.gets++;r.writeHead(405);return r.end()}"
    " let m;try{m=JSON.parse(b)}catch(e){r.writeHead(400);return r.end('bad json')}"
    " if(m.method==='initialize'){const id='sess-'+(++n);sessions.add(id);"
    "  r.writeHead(200,{'Content-Type':'application/json','Mcp-Session-Id':id});"
    "  return r.end(JSON.stringify({jsonrpc:'2.0',id:m.id,result:{protocolVersion:'2025-06-18',"
    "   capabilities:{tools:{}},serverInfo:{name:'fake-http',version:'2.0'}}}))}"
    " if(!sessions.has(s)){r.writeHead(404,{'Content-Type':'application/json'});"
    "  return r.end(JSON.stringify({jsonrpc:'2.0',id:null,error:{code:-32001,"
    "   message:'Session not found'}}))}"
    " if(q.headers['mcp-protocol-version']!=='2025-06-18'){r.writeHead(400);"
    "  return r.end('bad protocol version header')}"
    " if(m.method===undefined){if(asks[m.id]){asks[m.id](m);delete asks[m.id]}"
    "  r.writeHead(202);return r.end()}"
    " if(m.id===undefined){if(m.method==='notifications/cancelled')st.cancelled.push(m.params);"
    "  r.writeHead(202);return r.end()}"
    " const name=m.params&&m.params.name,a=(m.params&&m.params.arguments)||{};"
    " const res=x=>({jsonrpc:'2.0',id:m.id,result:{content:[{type:'text',text:x}]}});"
    " if(name==='json'){r.writeHead(200,{'Content-Type':'application/json'});"
    "  return r.end(JSON.stringify(res('json:'+a.v)))}"
    " if(name==='sse'){sse(r);ev(r,{jsonrpc:'2.0',method:'notifications/progress',"
    "  params:{progressToken:1,progress:1}},'e1');ev(r,res('sse:'+a.v),'e2');return r.end()}"
    " if(name==='ask'){sse(r);const rid='ask-'+m.id;asks[rid]=x=>{ev(r,res("
    "  JSON.stringify(x.result)));r.end()};return ev(r,{jsonrpc:'2.0',id:rid,"
    "  method:'sampling/createMessage',params:{messages:[],maxTokens:1}})}"
    " if(name==='poll'){const pid='p'+m.id;polls[pid]=res('poll:'+a.v);sse(r);"
    "  r.write('id: '+pid+'\\nretry: 50\\ndata: \\n\\n');return r.end()}"
    " if(name==='expire'&&!expired){expired=1;sessions.clear();r.writeHead(404);return r.end()}"
    " if(name==='expire'){r.writeHead(200,{'Content-Type':'application/json'});"
    "  return r.end(JSON.stringify(res('expired-then:'+s)))}"
    " if(name==='err'){r.writeHead(500);return r.end('boom\\nbang')}"
    " if(name==='leak'){r.writeHead(502,{'Content-Type':'application/json'});"
    "  return r.end(JSON.stringify({jsonrpc:'2.0',id:null,error:{code:-32000,"
    "   message:'token s3cret refused\\n'+'x'.repeat(300)}}))}"
    " if(name==='rpcerr'){r.writeHead(400,{'Content-Type':'application/json'});"
    "  return r.end(JSON.stringify({jsonrpc:'2.0',id:m.id,error:{code:-32602,"
    "   message:'bad arguments'}}))}"
    " if(name==='hang')return;"
    " if(name==='stats'){r.writeHead(200,{'Content-Type':'application/json'});"
    "  return r.end(JSON.stringify(res(JSON.stringify(st))))}"
    " r.writeHead(200,{'Content-Type':'application/json'});"
    " r.end(JSON.stringify({jsonrpc:'2.0',id:m.id,error:{code:-32601,message:'nope'}}))"
    "});});"
    "srv.listen(0,'127.0.0.1',()=>console.log(srv.address().port));"
    "process.stdin.on('end',()=>process.exit(0));process.stdin.resume();";

/* the reference servers' launcher (tests/tools/README.md) */
static const char *backend_script(void)
{
    static char path[512];
    source_path(path, sizeof(path), "tests/tools/mcp-server.sh");
    if (access(path, X_OK) != 0)
        fail_msg("%s: %s", path, strerror(errno));
    return path;
}

/* ---- the test context ---------------------------------------------------- */

typedef struct {
    uv_loop_t loop;
    aos_httpc_t *httpc;
    aos_upstream_t *up;
    int nstate[5]; /* transitions seen per state */
    aos_upstream_state_t state;
    char why[256];
    json_t *notes;    /* notifications received */
    json_t *requests; /* server->client requests received */
    int closed;
    int close_in_reply;
    int close_on_backoff;
} ctx_t;

typedef struct call_s {
    ctx_t *ctx;
    int done;
    int status;
    json_t *reply;
    char errmsg[256];
    uint64_t at; /* uv_now when answered */
    int index;
    struct call_s *chain; /* a request to send from inside this reply */
} call_t;

static void on_closed(aos_upstream_t *up, void *data)
{
    ctx_t *c = data;
    (void)up;
    c->closed++;
}

static void on_state(aos_upstream_t *up, aos_upstream_state_t st, const char *why, void *data)
{
    ctx_t *c = data;
    assert_ptr_equal(up, c->up);
    assert_int_equal(aos_upstream_state(up), st);
    c->nstate[st]++;
    c->state = st;
    snprintf(c->why, sizeof(c->why), "%s", why ? why : "");
    if (st == AOS_UP_BACKOFF && c->close_on_backoff)
        aos_upstream_close(up, on_closed, c);
}

static void on_notification(aos_upstream_t *up, json_t *msg, void *data)
{
    ctx_t *c = data;
    (void)up;
    json_array_append(c->notes, msg);
}

static void on_request(aos_upstream_t *up, json_t *msg, void *data)
{
    ctx_t *c = data;
    const char *method = json_string_value(json_object_get(msg, "method"));
    json_array_append(c->requests, msg);
    json_t *id = json_object_get(msg, "id");
    json_t *r;
    if (strcmp(method, "sampling/createMessage") == 0)
        r = json_pack("{s:s, s:O, s:{s:s, s:{s:s, s:s}, s:s}}", "jsonrpc", "2.0", "id", id,
                      "result", "role", "assistant", "content", "type", "text", "text", "sampled!",
                      "model", "test-model");
    else if (strcmp(method, "roots/list") == 0)
        r = json_pack("{s:s, s:O, s:{s:[]}}", "jsonrpc", "2.0", "id", id, "result", "roots");
    else
        r = json_pack("{s:O, s:{s:i, s:s}}", "id", id, "error", "code", -32601, "message", "no");
    assert_int_equal(aos_upstream_respond(up, r), 0);
}

static void on_reply(aos_upstream_t *up, json_t *reply, int status, const char *errmsg, void *data)
{
    call_t *k = data;
    k->done++;
    k->status = status;
    k->reply = json_incref(reply);
    snprintf(k->errmsg, sizeof(k->errmsg), "%s", errmsg ? errmsg : "");
    k->at = uv_now(&k->ctx->loop);
    if (k->ctx->close_in_reply)
        aos_upstream_close(up, on_closed, k->ctx);
    if (k->chain) {
        k->chain->ctx = k->ctx;
        json_t *params = json_pack("{s:s, s:{s:s}}", "name", "json", "arguments", "v", "chained");
        assert_int_equal(
            aos_upstream_request(up, "tools/call", params, 0, NULL, on_reply, k->chain, NULL), 0);
    }
}

static void call_release(call_t *k)
{
    json_decref(k->reply);
    k->reply = NULL;
}

static ctx_t *ctx_new(void)
{
    ctx_t *c = calloc(1, sizeof(*c));
    uv_loop_init(&c->loop);
    assert_int_equal(aos_httpc_new(&c->httpc, &c->loop, NULL), 0);
    c->notes = json_array();
    c->requests = json_array();
    return c;
}

static int up_open(ctx_t *c, aos_upstream_cfg_t *cfg)
{
    static const aos_upstream_cb_t cb = {on_state, on_notification, on_request};
    json_t *caps = json_pack("{s:{}, s:{s:{}, s:{}}, s:{s:b}}", "sampling", "elicitation", "form",
                             "url", "roots", "listChanged", 1);
    cfg->client_capabilities = caps;
    aos_err_t err = {0};
    int rc = aos_upstream_new(&c->up, &c->loop, c->httpc, cfg, &cb, c, &err);
    json_decref(caps);
    if (rc)
        print_error("aos_upstream_new: %s\n", aos_err_msg(&err));
    return rc;
}

static void up_close(ctx_t *c)
{
    if (c->up && !c->closed) {
        aos_upstream_close(c->up, on_closed, c);
        assert_int_equal(run_until(&c->loop, &c->closed, 1, 5000), 0);
    }
    c->up = NULL;
}

static void ctx_free(ctx_t *c)
{
    up_close(c);
    aos_httpc_free(c->httpc);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    json_decref(c->notes);
    json_decref(c->requests);
    free(c);
}

static int is_ready(const void *arg)
{
    const ctx_t *c = arg;
    return aos_upstream_state(c->up) == AOS_UP_READY;
}

static int wait_ready(ctx_t *c, uint64_t ms)
{
    return wait_for(&c->loop, is_ready, c, ms);
}

/* tools/call name with arguments (stolen); returns the request id. */
static uint64_t call_tool(ctx_t *c, call_t *k, const char *name, json_t *args, uint32_t timeout_ms)
{
    uint64_t id = 0;
    k->ctx = c;
    json_t *params =
        json_pack("{s:s, s:o}", "name", name, "arguments", args ? args : json_object());
    assert_int_equal(
        aos_upstream_request(c->up, "tools/call", params, timeout_ms, NULL, on_reply, k, &id), 0);
    assert_true(id > 0);
    return id;
}

static const char *result_text(const call_t *k)
{
    json_t *content = json_object_get(json_object_get(k->reply, "result"), "content");
    return json_string_value(json_object_get(json_array_get(content, 0), "text"));
}

static void fake_stdio_cfg(aos_upstream_cfg_t *cfg, const char *const *env)
{
    static const char *const args[] = {"-e", fake_stdio_js, NULL};
    memset(cfg, 0, sizeof(*cfg));
    cfg->name = "fake";
    cfg->transport = "stdio";
    cfg->command = "node";
    cfg->args = args;
    cfg->env = env;
    cfg->request_timeout_ms = 10000;
    cfg->restart_min_ms = 50;
    cfg->restart_max_ms = 200;
}

/* A started upstream on the inline stdio server, READY. */
static ctx_t *fake_stdio_ready(void)
{
    ctx_t *c = ctx_new();
    aos_upstream_cfg_t cfg;
    fake_stdio_cfg(&cfg, NULL);
    assert_int_equal(up_open(c, &cfg), 0);
    assert_int_equal(aos_upstream_start(c->up), 0);
    assert_int_equal(wait_ready(c, 10000), 0);
    return c;
}

/* ---- server-everything over stdio ----------------------------------------- */

enum { N_CONCURRENT = 200 };

static int all_done(const void *arg)
{
    const call_t *calls = arg;
    for (int i = 0; i < N_CONCURRENT; i++)
        if (!calls[i].done)
            return 0;
    return 1;
}

static int has_request(const void *arg)
{
    const ctx_t *c = arg;
    return json_array_size(c->requests) > 0;
}

static void test_stdio_everything(void **state)
{
    (void)state;
    ctx_t *c = ctx_new();
    const char *const args[] = {"everything", NULL};
    aos_upstream_cfg_t cfg = {.name = "everything",
                              .transport = "stdio",
                              .command = backend_script(),
                              .args = args,
                              .request_timeout_ms = 15000};
    assert_int_equal(up_open(c, &cfg), 0);
    assert_int_equal(aos_upstream_state(c->up), AOS_UP_STOPPED);
    assert_null(aos_upstream_init_result(c->up));
    assert_int_equal(aos_upstream_start(c->up), 0);
    assert_int_equal(aos_upstream_start(c->up), AOS_EINVAL);

    /* queued before READY, sent once READY */
    call_t list = {0};
    assert_int_equal(
        aos_upstream_request(c->up, "tools/list", NULL, 0, NULL, on_reply, &list, NULL), 0);
    list.ctx = c;
    assert_int_equal(wait_ready(c, 30000), 0);
    assert_true(aos_upstream_pid(c->up) > 0);
    const json_t *init = aos_upstream_init_result(c->up);
    assert_non_null(init);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(init, "serverInfo"), "name")),
        "mcp-servers/everything");
    assert_string_equal(aos_upstream_protocol_version(c->up), "2025-11-25");
    assert_non_null(json_object_get(init, "capabilities"));

    assert_int_equal(run_until(&c->loop, &list.done, 1, 10000), 0);
    assert_int_equal(list.status, 0);
    json_t *tools = json_object_get(json_object_get(list.reply, "result"), "tools");
    int has_echo = 0;
    for (size_t i = 0; i < json_array_size(tools); i++)
        has_echo |= strcmp(json_string_value(json_object_get(json_array_get(tools, i), "name")),
                           "echo") == 0;
    assert_true(has_echo);
    call_release(&list);

    call_t one = {0};
    call_tool(c, &one, "echo", json_pack("{s:s}", "message", "hi"), 0);
    assert_int_equal(run_until(&c->loop, &one.done, 1, 10000), 0);
    assert_int_equal(one.status, 0);
    assert_string_equal(result_text(&one), "Echo: hi");
    call_release(&one);

    /* 200 at once, each answer matched to its own request */
    enum { N = N_CONCURRENT };
    call_t *calls = calloc(N, sizeof(*calls));
    for (int i = 0; i < N; i++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "m%d", i);
        calls[i].index = i;
        call_tool(c, &calls[i], "echo", json_pack("{s:s}", "message", msg), 0);
    }
    assert_int_equal(wait_for(&c->loop, all_done, calls, 20000), 0);
    for (int i = 0; i < N; i++) {
        char want[32];
        snprintf(want, sizeof(want), "Echo: m%d", i);
        assert_int_equal(calls[i].status, 0);
        assert_string_equal(result_text(&calls[i]), want);
        call_release(&calls[i]);
    }
    free(calls);

    /* the server asks for our roots after initialized, and is answered */
    assert_int_equal(wait_for(&c->loop, has_request, c, 10000), 0);
    json_t *rq = json_array_get(c->requests, 0);
    assert_non_null(rq);
    assert_string_equal(json_string_value(json_object_get(rq, "method")), "roots/list");
    int pid = aos_upstream_pid(c->up);
    up_close(c);
    assert_int_equal(c->closed, 1);
    assert_int_equal(c->nstate[AOS_UP_CLOSED], 1);
    assert_int_equal(c->nstate[AOS_UP_BACKOFF], 0);
    assert_true(kill(pid, 0) != 0); /* stopped and reaped */
    ctx_free(c);
}

/* ---- inline stdio server ---------------------------------------------------- */

static json_t *find_note(ctx_t *c, const char *method)
{
    for (size_t i = 0; i < json_array_size(c->notes); i++) {
        json_t *n = json_array_get(c->notes, i);
        if (strcmp(json_string_value(json_object_get(n, "method")), method) == 0)
            return n;
    }
    return NULL;
}

static int count_notes(ctx_t *c, const char *method)
{
    int n = 0;
    for (size_t i = 0; i < json_array_size(c->notes); i++)
        n += strcmp(json_string_value(json_object_get(json_array_get(c->notes, i), "method")),
                    method) == 0;
    return n;
}

typedef struct {
    ctx_t *c;
    const char *method;
    int want;
} notes_t;

static int notes_reached(const void *arg)
{
    const notes_t *n = arg;
    return count_notes(n->c, n->method) >= n->want;
}

static int wait_notes(ctx_t *c, const char *method, int want, uint64_t ms)
{
    notes_t n = {c, method, want};
    return wait_for(&c->loop, notes_reached, &n, ms);
}

static void test_stdio_timeout_and_cancel(void **state)
{
    (void)state;
    ctx_t *c = fake_stdio_ready();
    assert_string_equal(aos_upstream_protocol_version(c->up), "2025-11-25");

    call_t k = {0};
    uint64_t t0 = uv_now(&c->loop);
    uint64_t id = call_tool(c, &k, "hang", NULL, 300);
    assert_int_equal(run_until(&c->loop, &k.done, 1, 5000), 0);
    assert_int_equal(k.status, AOS_ETIMEDOUT);
    assert_null(k.reply);
    assert_true(k.at - t0 >= 290 && k.at - t0 < 1500);
    /* the server was told, with the id it knows */
    assert_int_equal(wait_notes(c, "test/cancelled", 1, 5000), 0);
    json_t *p = json_object_get(find_note(c, "test/cancelled"), "params");
    assert_int_equal(json_integer_value(json_object_get(p, "requestId")), (json_int_t)id);
    assert_string_equal(json_string_value(json_object_get(p, "reason")), "timeout");

    /* an explicit cancel: no callback, the server is told the reason */
    call_t k2 = {0};
    uint64_t id2 = call_tool(c, &k2, "hang", NULL, 0);
    aos_upstream_cancel(c->up, id2, "user gave up");
    aos_upstream_cancel(c->up, id2, "twice"); /* unknown now: ignored */
    assert_int_equal(wait_notes(c, "test/cancelled", 2, 5000), 0);
    p = json_object_get(json_array_get(c->notes, json_array_size(c->notes) - 1), "params");
    assert_int_equal(json_integer_value(json_object_get(p, "requestId")), (json_int_t)id2);
    assert_string_equal(json_string_value(json_object_get(p, "reason")), "user gave up");
    assert_int_equal(k2.done, 0);
    assert_int_equal(c->nstate[AOS_UP_BACKOFF], 0);

    /* close with a request in flight: it fails with ECANCELED, once */
    call_t k3 = {0};
    call_tool(c, &k3, "hang", NULL, 0);
    up_close(c);
    assert_int_equal(k3.done, 1);
    assert_int_equal(k3.status, AOS_ECANCELED);
    assert_int_equal(k2.done, 0);
    ctx_free(c);
}

/* The trace context goes in params._meta: replacing the caller's
 * traceparent and tracestate, keeping the rest of its _meta, never
 * changing the caller's params object. */
static void test_stdio_trace_meta(void **state)
{
    (void)state;
    ctx_t *c = fake_stdio_ready();
    aos_tracectx_t tc;
    assert_int_equal(
        aos_tracectx_parse(&tc, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL),
        0);
    json_t *mine = json_pack("{s:s, s:{s:s, s:s, s:i}}", "arguments", "kept", "_meta",
                             "traceparent", "theirs", "tracestate", "theirs=1", "progressToken", 5);
    call_t k = {0};
    k.ctx = c;
    assert_int_equal(
        aos_upstream_request(c->up, "test/meta", json_incref(mine), 0, &tc, on_reply, &k, NULL), 0);
    assert_int_equal(run_until(&c->loop, &k.done, 1, 5000), 0);
    json_t *r = json_object_get(k.reply, "result");
    json_t *meta = json_object_get(r, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "traceparent")),
                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_null(json_object_get(meta, "tracestate")); /* the caller's went with its traceparent */
    assert_int_equal(json_integer_value(json_object_get(meta, "progressToken")), 5);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "params"), "arguments")), "kept");
    /* the caller's object is as it was */
    json_t *mm = json_object_get(mine, "_meta");
    assert_string_equal(json_string_value(json_object_get(mm, "traceparent")), "theirs");
    assert_string_equal(json_string_value(json_object_get(mm, "tracestate")), "theirs=1");
    json_decref(mine);
    call_release(&k);

    /* no params: made; with our tracestate */
    snprintf(tc.tracestate, sizeof(tc.tracestate), "rojo=1");
    call_t k2 = {0};
    k2.ctx = c;
    assert_int_equal(aos_upstream_request(c->up, "test/meta", NULL, 0, &tc, on_reply, &k2, NULL),
                     0);
    assert_int_equal(run_until(&c->loop, &k2.done, 1, 5000), 0);
    meta = json_object_get(json_object_get(k2.reply, "result"), "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "tracestate")), "rojo=1");
    call_release(&k2);

    /* no context, or params that cannot hold a _meta: sent as they are */
    call_t k3 = {0}, k4 = {0};
    k3.ctx = k4.ctx = c;
    aos_tracectx_t empty;
    memset(&empty, 0, sizeof(empty));
    assert_int_equal(aos_upstream_request(c->up, "test/meta", NULL, 0, &empty, on_reply, &k3, NULL),
                     0);
    assert_int_equal(
        aos_upstream_request(c->up, "test/meta", json_pack("[i]", 1), 0, &tc, on_reply, &k4, NULL),
        0);
    assert_int_equal(run_until(&c->loop, &k4.done, 1, 5000), 0);
    assert_int_equal(run_until(&c->loop, &k3.done, 1, 5000), 0);
    assert_true(json_is_null(json_object_get(json_object_get(k3.reply, "result"), "params")));
    r = json_object_get(k4.reply, "result");
    assert_true(json_is_null(json_object_get(r, "meta")));
    assert_int_equal(json_integer_value(json_array_get(json_object_get(r, "params"), 0)), 1);
    call_release(&k3);
    call_release(&k4);

    /* a _meta that is not an object: sent as it is */
    call_t k5 = {0}, k6 = {0};
    k5.ctx = k6.ctx = c;
    assert_int_equal(aos_upstream_request(c->up, "test/meta", json_pack("{s:i}", "_meta", 5), 0,
                                          &tc, on_reply, &k5, NULL),
                     0);
    /* the other members of params and of its _meta go along, their keys
     * escaped as they are written */
    assert_int_equal(aos_upstream_request(c->up, "test/meta",
                                          json_pack("{s:{s:i, s:s}, s:s}", "_meta", "a\"", 1,
                                                    "traceparent", "theirs", "q\"\n\\", "x"),
                                          0, &tc, on_reply, &k6, NULL),
                     0);
    assert_int_equal(run_until(&c->loop, &k6.done, 1, 5000), 0);
    assert_int_equal(run_until(&c->loop, &k5.done, 1, 5000), 0);
    r = json_object_get(k5.reply, "result");
    assert_int_equal(json_integer_value(json_object_get(r, "meta")), 5);
    r = json_object_get(k6.reply, "result");
    meta = json_object_get(r, "meta");
    assert_int_equal(json_integer_value(json_object_get(meta, "a\"")), 1);
    assert_string_equal(json_string_value(json_object_get(meta, "traceparent")),
                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_string_equal(json_string_value(json_object_get(meta, "tracestate")), "rojo=1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "params"), "q\"\n\\")),
                        "x");
    call_release(&k5);
    call_release(&k6);
    up_close(c);
    ctx_free(c);
}

static void test_stdio_child_killed(void **state)
{
    (void)state;
    ctx_t *c = fake_stdio_ready();
    int pid = aos_upstream_pid(c->up);
    assert_true(pid > 0);

    call_t k = {0};
    call_tool(c, &k, "hang", NULL, 0);
    run_until(&c->loop, &k.done, 1, 100); /* let it reach the child */
    assert_int_equal(kill(pid, SIGKILL), 0);
    uint64_t t0 = uv_now(&c->loop);
    assert_int_equal(run_until(&c->loop, &k.done, 1, 5000), 0);
    assert_int_equal(k.status, AOS_EUPSTREAM);
    assert_non_null(strstr(k.errmsg, "upstream exited (signal 9)"));
    assert_true(k.at - t0 < 1000);
    assert_int_equal(c->nstate[AOS_UP_BACKOFF], 1);
    assert_non_null(strstr(aos_upstream_last_error(c->up), "signal 9"));
    /* no request while backing off */
    call_t k2 = {0};
    if (aos_upstream_state(c->up) == AOS_UP_BACKOFF) {
        json_t *params = json_pack("{s:s}", "name", "echo");
        assert_int_equal(
            aos_upstream_request(c->up, "tools/call", params, 0, NULL, on_reply, &k2, NULL),
            AOS_EUNAVAIL);
    }

    /* restarted and READY again */
    assert_int_equal(wait_ready(c, 10000), 0);
    assert_int_equal(c->nstate[AOS_UP_READY], 2);
    int pid2 = aos_upstream_pid(c->up);
    assert_true(pid2 > 0 && pid2 != pid);
    call_t k3 = {0};
    call_tool(c, &k3, "echo", json_pack("{s:s}", "v", "again"), 0);
    assert_int_equal(run_until(&c->loop, &k3.done, 1, 5000), 0);
    assert_int_equal(k3.status, 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(k3.reply, "result"), "v")), "again");
    call_release(&k3);
    assert_int_equal(k2.done, 0);
    ctx_free(c);
}

static void test_stdio_garbage(void **state)
{
    (void)state;
    ctx_t *c = fake_stdio_ready();
    int pid = aos_upstream_pid(c->up);
    for (int round = 0; round < 3; round++) { /* again and again */
        call_t k = {0};
        call_tool(c, &k, "garbage", NULL, 0);
        assert_int_equal(run_until(&c->loop, &k.done, 1, 10000), 0);
        assert_int_equal(k.status, 0);
        assert_true(json_is_true(json_object_get(json_object_get(k.reply, "result"), "ok")));
        call_release(&k);
    }
    assert_int_equal(aos_upstream_pid(c->up), pid);
    assert_int_equal(c->nstate[AOS_UP_BACKOFF], 0);
    assert_int_equal(c->nstate[AOS_UP_READY], 1);
    ctx_free(c);
}

/* A child that closes its stdin and lives on: the next request cannot be
 * written, the child is stopped and the request fails at once (not at its
 * 10 s timeout), and a new child serves the next one. */
static void test_stdio_deaf_child(void **state)
{
    (void)state;
    ctx_t *c = fake_stdio_ready();
    int pid = aos_upstream_pid(c->up);
    call_t k = {0};
    call_tool(c, &k, "deaf", NULL, 0);
    assert_int_equal(run_until(&c->loop, &k.done, 1, 5000), 0);
    assert_int_equal(k.status, 0);
    call_release(&k);
    call_t k2 = {0};
    call_tool(c, &k2, "echo", NULL, 0);
    assert_int_equal(run_until(&c->loop, &k2.done, 1, 5000), 0);
    assert_int_not_equal(k2.status, 0);
    assert_int_not_equal(k2.status, AOS_ETIMEDOUT);
    call_release(&k2);
    assert_int_equal(wait_ready(c, 10000), 0);
    assert_int_not_equal(aos_upstream_pid(c->up), pid);
    call_t k3 = {0};
    call_tool(c, &k3, "echo", NULL, 0);
    assert_int_equal(run_until(&c->loop, &k3.done, 1, 5000), 0);
    assert_int_equal(k3.status, 0);
    call_release(&k3);
    ctx_free(c);
}

static void test_stdio_server_request(void **state)
{
    (void)state;
    ctx_t *c = fake_stdio_ready();
    call_t k = {0};
    call_tool(c, &k, "ask", NULL, 0);
    assert_int_equal(run_until(&c->loop, &k.done, 1, 5000), 0);
    assert_int_equal(k.status, 0);
    assert_int_equal(json_array_size(c->requests), 1);
    json_t *rq = json_array_get(c->requests, 0);
    assert_string_equal(json_string_value(json_object_get(rq, "method")), "sampling/createMessage");
    assert_string_equal(json_string_value(json_object_get(rq, "id")), "s1");
    json_t *answered = json_loads(result_text(&k), 0, NULL);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(answered, "content"), "text")),
        "sampled!");
    json_decref(answered);
    call_release(&k);
    ctx_free(c);
}

static void test_stdio_failures(void **state)
{
    (void)state;
    /* a command that does not exist: BACKOFF, queued requests fail, retries */
    ctx_t *c = ctx_new();
    aos_upstream_cfg_t cfg = {.name = "missing",
                              .transport = "stdio",
                              .command = "/nonexistent/mcp-server",
                              .restart_min_ms = 20,
                              .restart_max_ms = 40};
    assert_int_equal(up_open(c, &cfg), 0);
    call_t k = {0};
    k.ctx = c;
    assert_int_equal(aos_upstream_request(c->up, "tools/list", NULL, 0, NULL, on_reply, &k, NULL),
                     0);
    assert_int_equal(aos_upstream_start(c->up), 0);
    assert_int_equal(run_until(&c->loop, &c->nstate[AOS_UP_BACKOFF], 3, 5000), 0);
    assert_int_equal(k.done, 1);
    assert_int_equal(k.status, AOS_EUNAVAIL);
    assert_non_null(strstr(aos_upstream_last_error(c->up), "unable to start"));
    assert_int_equal(aos_upstream_pid(c->up), 0);
    ctx_free(c);

    /* a server answering a protocol version we do not speak */
    c = ctx_new();
    const char *const env[] = {"FAKE_VERSION=1999-01-01", NULL};
    fake_stdio_cfg(&cfg, env);
    assert_int_equal(up_open(c, &cfg), 0);
    assert_int_equal(aos_upstream_start(c->up), 0);
    assert_int_equal(run_until(&c->loop, &c->nstate[AOS_UP_BACKOFF], 1, 10000), 0);
    assert_non_null(strstr(aos_upstream_last_error(c->up), "unsupported protocol version"));
    assert_int_equal(c->nstate[AOS_UP_READY], 0);
    ctx_free(c);

    /* closed from inside on_state: no restart, closed() runs once */
    c = ctx_new();
    fake_stdio_cfg(&cfg, env);
    c->close_on_backoff = 1;
    assert_int_equal(up_open(c, &cfg), 0);
    assert_int_equal(aos_upstream_start(c->up), 0);
    assert_int_equal(run_until(&c->loop, &c->closed, 1, 10000), 0);
    assert_int_equal(c->nstate[AOS_UP_BACKOFF], 1);
    assert_int_equal(c->nstate[AOS_UP_CLOSED], 1);
    assert_int_equal(c->nstate[AOS_UP_STARTING], 1);
    c->up = NULL;
    ctx_free(c);

    /* bad configurations fail synchronously */
    aos_upstream_t *up = NULL;
    aos_err_t err = {0};
    uv_loop_t loop;
    uv_loop_init(&loop);
    aos_upstream_cfg_t bad = {.name = "x", .transport = "carrier-pigeon"};
    assert_int_equal(aos_upstream_new(&up, &loop, NULL, &bad, NULL, NULL, &err), AOS_EINVAL);
    bad.transport = "streamable-http";
    bad.url = "ftp://x";
    assert_int_equal(aos_upstream_new(&up, &loop, NULL, &bad, NULL, NULL, &err), AOS_EINVAL);
    assert_null(up);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_close_from_callback(void **state)
{
    (void)state;
    ctx_t *c = fake_stdio_ready();
    int pid = aos_upstream_pid(c->up);
    call_t a = {0}, b = {0};
    call_tool(c, &a, "echo", json_pack("{s:i}", "v", 1), 0);
    call_tool(c, &b, "hang", NULL, 0);
    c->close_in_reply = 1; /* a's reply closes the upstream */
    assert_int_equal(run_until(&c->loop, &c->closed, 1, 5000), 0);
    assert_int_equal(a.done, 1);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.done, 1);
    assert_int_equal(b.status, AOS_ECANCELED);
    assert_int_equal(c->nstate[AOS_UP_CLOSED], 1);
    assert_true(kill(pid, 0) != 0);
    call_release(&a);
    c->up = NULL;
    ctx_free(c);
}

/* n echo calls to server-everything (or the SDK fixture) at once, each
 * answer matched to its own request. */
static void echo_many(ctx_t *c, const char *prefix, int n)
{
    call_t *calls = calloc((size_t)n, sizeof(*calls));
    for (int i = 0; i < n; i++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "%s%d", prefix, i);
        call_tool(c, &calls[i], "echo", json_pack("{s:s}", "message", msg), 0);
    }
    for (int i = 0; i < n; i++) {
        char want[48];
        snprintf(want, sizeof(want), "Echo: %s%d", prefix, i);
        assert_int_equal(run_until(&c->loop, &calls[i].done, 1, 10000), 0);
        assert_int_equal(calls[i].status, 0);
        assert_string_equal(result_text(&calls[i]), want);
        call_release(&calls[i]);
    }
    free(calls);
}

/* ---- Streamable HTTP ------------------------------------------------------- */

static void http_cfg(aos_upstream_cfg_t *cfg, const char *url)
{
    static const char *const headers[] = {"X-Api: k1", NULL};
    memset(cfg, 0, sizeof(*cfg));
    cfg->name = "fake-http";
    cfg->transport = "streamable-http";
    cfg->url = url;
    cfg->headers = headers;
    cfg->bearer_token = "s3cret";
    cfg->request_timeout_ms = 5000;
    cfg->restart_min_ms = 50;
    cfg->restart_max_ms = 200;
}

static void test_http_fake(void **state)
{
    (void)state;
    proc_t srv;
    char *argv[] = {"node", "-e", (char *)fake_http_js, NULL};
    assert_int_equal(proc_start(&srv, argv, NULL, 1), 0);
    assert_true(srv.port > 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/mcp", srv.port);

    ctx_t *c = ctx_new();
    aos_upstream_cfg_t cfg;
    http_cfg(&cfg, url);
    assert_int_equal(up_open(c, &cfg), 0);
    assert_int_equal(aos_upstream_start(c->up), 0);
    assert_int_equal(wait_ready(c, 10000), 0);
    assert_string_equal(aos_upstream_protocol_version(c->up), "2025-06-18");
    assert_int_equal(aos_upstream_pid(c->up), 0);

    /* application/json answer */
    call_t k = {0};
    call_tool(c, &k, "json", json_pack("{s:i}", "v", 7), 0);
    assert_int_equal(run_until(&c->loop, &k.done, 1, 5000), 0);
    assert_int_equal(k.status, 0);
    assert_string_equal(result_text(&k), "json:7");
    call_release(&k);

    /* event stream: a notification, then the answer; its callback sends
     * another request from inside the stream's processing */
    call_t s = {0}, chained = {0};
    s.chain = &chained;
    call_tool(c, &s, "sse", json_pack("{s:i}", "v", 8), 0);
    assert_int_equal(run_until(&c->loop, &s.done, 1, 5000), 0);
    assert_int_equal(s.status, 0);
    assert_string_equal(result_text(&s), "sse:8");
    assert_non_null(find_note(c, "notifications/progress"));
    call_release(&s);
    assert_int_equal(run_until(&c->loop, &chained.done, 1, 5000), 0);
    assert_int_equal(chained.status, 0);
    assert_string_equal(result_text(&chained), "json:chained");
    call_release(&chained);

    /* a server->client request on the stream, answered by POST */
    call_t q = {0};
    call_tool(c, &q, "ask", NULL, 0);
    assert_int_equal(run_until(&c->loop, &q.done, 1, 5000), 0);
    assert_int_equal(q.status, 0);
    assert_non_null(strstr(result_text(&q), "sampled!"));
    assert_int_equal(json_array_size(c->requests), 1);
    call_release(&q);

    /* stream closed early: resumed with Last-Event-ID */
    call_t p = {0};
    call_tool(c, &p, "poll", json_pack("{s:i}", "v", 9), 0);
    assert_int_equal(run_until(&c->loop, &p.done, 1, 5000), 0);
    assert_int_equal(p.status, 0);
    assert_string_equal(result_text(&p), "poll:9");
    call_release(&p);

    /* HTTP errors */
    call_t e = {0}, r = {0};
    call_tool(c, &e, "err", NULL, 0);
    call_tool(c, &r, "rpcerr", NULL, 0);
    assert_int_equal(run_until(&c->loop, &e.done, 1, 5000), 0);
    assert_int_equal(run_until(&c->loop, &r.done, 1, 5000), 0);
    assert_int_equal(e.status, AOS_EUPSTREAM);
    /* the status and its phrase: an error page is not shown */
    assert_string_equal(e.errmsg, "http 500 Internal Server Error");
    assert_int_equal(r.status, 0); /* a JSON-RPC error is an answer */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.reply, "error"), "message")),
        "bad arguments");
    call_release(&r);
    /* a JSON-RPC error's message is kept, short and without our token */
    call_t lk = {0};
    call_tool(c, &lk, "leak", NULL, 0);
    assert_int_equal(run_until(&c->loop, &lk.done, 1, 5000), 0);
    assert_int_equal(lk.status, AOS_EUPSTREAM);
    assert_non_null(strstr(lk.errmsg, "http 502 Bad Gateway: token [REDACTED] refused xxx"));
    assert_null(strstr(lk.errmsg, "s3cret"));
    assert_true(strlen(lk.errmsg) < 160);
    assert_string_equal(lk.errmsg + strlen(lk.errmsg) - 3, "...");
    call_release(&lk);

    /* session expired: re-initialized and the request sent again */
    call_t x = {0};
    call_tool(c, &x, "expire", NULL, 0);
    assert_int_equal(run_until(&c->loop, &x.done, 1, 5000), 0);
    assert_int_equal(x.status, 0);
    assert_string_equal(result_text(&x), "expired-then:sess-2");
    assert_int_equal(c->nstate[AOS_UP_READY], 2);
    assert_int_equal(c->nstate[AOS_UP_BACKOFF], 0);

    /* timeout: notifications/cancelled is POSTed */
    call_t t = {0};
    uint64_t tid = call_tool(c, &t, "hang", NULL, 200);
    assert_int_equal(run_until(&c->loop, &t.done, 1, 5000), 0);
    assert_int_equal(t.status, AOS_ETIMEDOUT);
    call_release(&x);

    /* close: DELETE of the session */
    up_close(c);
    assert_int_equal(c->closed, 1);

    /* a second client reads the server's counters */
    ctx_t *c2 = ctx_new();
    http_cfg(&cfg, url);
    assert_int_equal(up_open(c2, &cfg), 0);
    assert_int_equal(aos_upstream_start(c2->up), 0);
    assert_int_equal(wait_ready(c2, 10000), 0);
    call_t st = {0};
    call_tool(c2, &st, "stats", NULL, 0);
    assert_int_equal(run_until(&c2->loop, &st.done, 1, 5000), 0);
    assert_int_equal(st.status, 0);
    json_t *stats = json_loads(result_text(&st), 0, NULL);
    assert_non_null(stats);
    assert_int_equal(json_integer_value(json_object_get(stats, "deletes")), 1);
    assert_true(json_integer_value(json_object_get(stats, "gets")) >= 2); /* one per session */
    assert_int_equal(json_integer_value(json_object_get(stats, "resumes")), 1);
    json_t *cancelled = json_array_get(json_object_get(stats, "cancelled"), 0);
    assert_int_equal(json_integer_value(json_object_get(cancelled, "requestId")), (json_int_t)tid);
    json_decref(stats);
    call_release(&st);
    ctx_free(c2);
    ctx_free(c);

    /* wrong token: initialize fails with the HTTP status, then backs off */
    c = ctx_new();
    http_cfg(&cfg, url);
    cfg.bearer_token = "wrong";
    assert_int_equal(up_open(c, &cfg), 0);
    assert_int_equal(aos_upstream_start(c->up), 0);
    assert_int_equal(run_until(&c->loop, &c->nstate[AOS_UP_BACKOFF], 1, 5000), 0);
    assert_non_null(strstr(aos_upstream_last_error(c->up), "http 401"));
    assert_null(strstr(aos_upstream_last_error(c->up), "wrong"));
    ctx_free(c);
    proc_stop(&srv);
}

static void test_http_everything(void **state)
{
    (void)state;
    int port = free_port();
    char env_port[32], url[64];
    snprintf(env_port, sizeof(env_port), "PORT=%d", port);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/mcp", port);
    char *argv[] = {(char *)backend_script(), "everything", "http", NULL};
    char *envs[] = {env_port, NULL};
    proc_t srv;
    assert_int_equal(proc_start(&srv, argv, envs, 0), 0);

    ctx_t *c = ctx_new();
    aos_upstream_cfg_t cfg = {.name = "everything-http",
                              .transport = "streamable-http",
                              .url = url,
                              .request_timeout_ms = 10000,
                              .restart_min_ms = 100,
                              .restart_max_ms = 500};
    assert_int_equal(up_open(c, &cfg), 0);
    assert_int_equal(aos_upstream_start(c->up), 0);
    /* the server needs a moment to listen: connection failures back off */
    assert_int_equal(wait_ready(c, 30000), 0);
    const json_t *init = aos_upstream_init_result(c->up);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(init, "serverInfo"), "name")),
        "mcp-servers/everything");

    call_t k = {0};
    call_tool(c, &k, "echo", json_pack("{s:s}", "message", "over http"), 0);
    assert_int_equal(run_until(&c->loop, &k.done, 1, 10000), 0);
    assert_int_equal(k.status, 0);
    assert_string_equal(result_text(&k), "Echo: over http");
    call_release(&k);

    echo_many(c, "h", 50);

    /* the server goes away: a request fails with EUPSTREAM, the upstream
     * backs off, and is READY again (new session) once the server is back */
    proc_stop(&srv);
    call_t lost = {0};
    call_tool(c, &lost, "echo", json_pack("{s:s}", "message", "nobody"), 0);
    assert_int_equal(run_until(&c->loop, &lost.done, 1, 10000), 0);
    assert_int_equal(lost.status, AOS_EUPSTREAM);
    assert_true(c->nstate[AOS_UP_BACKOFF] >= 1);
    int ready_before = c->nstate[AOS_UP_READY];
    assert_int_equal(proc_start(&srv, argv, envs, 0), 0);
    assert_int_equal(run_until(&c->loop, &c->nstate[AOS_UP_READY], ready_before + 1, 30000), 0);
    call_t back = {0};
    call_tool(c, &back, "echo", json_pack("{s:s}", "message", "back"), 0);
    assert_int_equal(run_until(&c->loop, &back.done, 1, 10000), 0);
    assert_int_equal(back.status, 0);
    assert_string_equal(result_text(&back), "Echo: back");
    call_release(&back);

    up_close(c);
    ctx_free(c);
    proc_stop(&srv);
}

/* ---- legacy HTTP+SSE ------------------------------------------------------ */

/* An inline legacy server, for what the SDK's will not do on demand. GET
 * /sse opens a stream whose endpoint event is relative without a slash
 * ("messages?s=<id>"), or with ?mode=evil one on another origin, or with
 * ?mode=mute none, or with ?mode=json no stream at all. Answers go on the stream; tools "echo"
 * (returns how many streams were opened and v), "bad" (400), "forget" (the
 * session is dropped: 404) and "end" (the server ends the stream). */
static const char fake_legacy_js[] =
    "const http=require('http');let gets=0,n=0;const streams=new Map();"
    "const ev=(r,t,d)=>r.write('event: '+t+'\\ndata: '+d+'\\n\\n');"
    "const msg=(s,m)=>ev(s,'message',JSON.stringify(m));"
    "const srv=http.createServer((q,r)=>{const u=new URL(q.url,'http://x');"
    " if(q.method==='GET'){const mode=u.searchParams.get('mode');gets++;"
    "  if(mode==='json'){r.writeHead(200,{'Content-Type':'application/json'});return r.end('{}')}"
    "  r.writeHead(200,{'Content-Type':'text/event-stream'});"
    "  if(mode==='evil')return ev(r,'endpoint','//localhost:'+srv.address().port+'/messages');"
    "  if(mode==='mute')return r.write(': nothing to say\\n\\n');"
    "  const id='s'+(++n);streams.set(id,r);q.on('close',()=>streams.delete(id));"
    "  return ev(r,'endpoint','messages?s='+id)}"
    " let b='';q.on('data',d=>b+=d);q.on('end',()=>{const sid=u.searchParams.get('s');"
    "  const s=streams.get(sid);"
    "  if(!s||u.pathname!=='/messages'){r.writeHead(404);return r.end('gone')}"
    "  const m=JSON.parse(b),name=m.params&&m.params.name;"
    "  if(name==='forget'){streams.delete(sid);r.writeHead(404);return r.end('gone')}"
    "  if(name==='bad'){r.writeHead(400);return r.end('bad\\nthing')}"
    "  r.writeHead(202);r.end('Accepted');"
    "  if(m.method==='initialize')return msg(s,{jsonrpc:'2.0',id:m.id,result:{protocolVersion:"
    "   m.params.protocolVersion,capabilities:{tools:{}},serverInfo:{name:'fake-legacy',"
    "   version:'1'}}});"
    "  if(name==='echo')return msg(s,{jsonrpc:'2.0',id:m.id,result:{content:[{type:'text',"
    "   text:'gets='+gets+' v='+m.params.arguments.v}]}});"
    "  if(name==='end')return s.end();"
    " })});"
    "srv.listen(0,'127.0.0.1',()=>console.log(srv.address().port));";

static const char *fixture_path(const char *name)
{
    static char path[512];
    char rel[128];
    snprintf(rel, sizeof(rel), "tests/e2e/fixtures/%s", name);
    return source_path(path, sizeof(path), rel);
}

static void sse_cfg(aos_upstream_cfg_t *cfg, const char *url, const char *token)
{
    static const char *const headers[] = {"X-Api: k1", NULL};
    memset(cfg, 0, sizeof(*cfg));
    cfg->name = "legacy";
    cfg->transport = "sse";
    cfg->url = url;
    cfg->headers = headers;
    cfg->bearer_token = token;
    cfg->request_timeout_ms = 5000;
    cfg->restart_min_ms = 50;
    cfg->restart_max_ms = 200;
}

static void test_sse_endpoint_resolution(void **state)
{
    (void)state;
    static const struct {
        const char *base, *ref, *want; /* want NULL: refused */
    } cases[] = {
        {"http://127.0.0.1:8080/sse", "/messages?sessionId=a-1",
         "http://127.0.0.1:8080/messages?sessionId=a-1"},
        {"http://127.0.0.1:8080/mcp/sse", "messages?s=1", "http://127.0.0.1:8080/mcp/messages?s=1"},
        {"http://127.0.0.1:8080/a/b/sse", "../m", "http://127.0.0.1:8080/a/m"},
        {"http://h.example/sse", "http://h.example:80/m", "http://h.example:80/m"},
        {"https://H.example/sse", "https://h.example/m", "https://h.example/m"},
        {"https://h.example:8443/sse?x=1", "?y=2", "https://h.example:8443/sse?y=2"},
        {"http://127.0.0.1:8080/sse", "//evil.example:8080/m", NULL},
        {"http://127.0.0.1:8080/sse", "http://localhost:8080/m", NULL},
        {"http://127.0.0.1:8080/sse", "http://127.0.0.1:8081/m", NULL},
        {"http://127.0.0.1:8080/sse", "https://127.0.0.1:8080/m", NULL},
        {"http://127.0.0.1:8080/sse", "ftp://127.0.0.1:8080/m", NULL},
        {"http://127.0.0.1:8080/sse", "/m\r\nX-Evil: 1", NULL},
        {"http://127.0.0.1:8080/sse", "/a b", NULL},
        {"http://127.0.0.1:8080/sse", "", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        const char *why = NULL;
        int rc =
            aos__up_lsse_endpoint(cases[i].base, cases[i].ref, strlen(cases[i].ref), &out, &why);
        if (cases[i].want) {
            if (rc != 0)
                print_error("case %zu: %s\n", i, why);
            assert_int_equal(rc, 0);
            assert_string_equal(out, cases[i].want);
        } else {
            if (rc == 0)
                print_error("case %zu: accepted as %s\n", i, out);
            assert_int_equal(rc, AOS_EUPSTREAM);
            assert_null(out);
            assert_non_null(why);
        }
        free(out);
    }
    char *out = NULL;
    const char *why = NULL;
    char big[4096];
    memset(big, 'a', sizeof(big) - 1);
    big[0] = '/';
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(aos__up_lsse_endpoint("http://h/sse", big, strlen(big), &out, &why),
                     AOS_EUPSTREAM);
    assert_null(out);
}

/* The official SDK's SSEServerTransport: initialize, list, calls, a
 * server->client request; then the server dies under a pending call, and the
 * upstream comes back when it is restarted. */
static void test_sse_sdk_server(void **state)
{
    (void)state;
    int port = free_port();
    char env_port[32], url[64];
    snprintf(env_port, sizeof(env_port), "PORT=%d", port);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/sse", port);
    char *argv[] = {"node", (char *)fixture_path("legacy-sse-server.mjs"), NULL};
    char *envs[] = {env_port, "TOKEN=s3cret", NULL};
    proc_t srv;
    assert_int_equal(proc_start(&srv, argv, envs, 1), 0);
    assert_int_equal(srv.port, port);

    ctx_t *c = ctx_new();
    aos_upstream_cfg_t cfg;
    sse_cfg(&cfg, url, "s3cret");
    assert_int_equal(up_open(c, &cfg), 0);
    assert_int_equal(aos_upstream_start(c->up), 0);
    call_t list = {0};
    assert_int_equal(
        aos_upstream_request(c->up, "tools/list", NULL, 0, NULL, on_reply, &list, NULL), 0);
    list.ctx = c;
    assert_int_equal(wait_ready(c, 10000), 0);
    assert_string_equal(aos_upstream_protocol_version(c->up), "2024-11-05");
    const json_t *init = aos_upstream_init_result(c->up);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(init, "serverInfo"), "name")),
        "legacy-sse");
    assert_int_equal(aos_upstream_pid(c->up), 0);

    /* queued before READY: answered on the stream */
    assert_int_equal(run_until(&c->loop, &list.done, 1, 5000), 0);
    assert_int_equal(list.status, 0);
    json_t *tools = json_object_get(json_object_get(list.reply, "result"), "tools");
    assert_int_equal(json_array_size(tools), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tools, 0), "name")),
                        "echo");
    call_release(&list);

    call_t k = {0};
    call_tool(c, &k, "echo", json_pack("{s:s}", "message", "legacy"), 0);
    assert_int_equal(run_until(&c->loop, &k.done, 1, 5000), 0);
    assert_int_equal(k.status, 0);
    assert_string_equal(result_text(&k), "Echo: legacy");
    call_release(&k);

    /* the server asks us for a sampling on the stream; our answer is POSTed */
    call_t q = {0};
    call_tool(c, &q, "sample", NULL, 0);
    assert_int_equal(run_until(&c->loop, &q.done, 1, 5000), 0);
    assert_int_equal(q.status, 0);
    assert_string_equal(result_text(&q), "sampled: sampled!");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(c->requests, 0), "method")),
        "sampling/createMessage");
    call_release(&q);

    echo_many(c, "l", 50);

    /* the stream drops under a pending call: it fails at once, not at its
     * timeout, and the upstream backs off */
    call_t lost = {0};
    call_tool(c, &lost, "hang", NULL, 0);
    run_until(&c->loop, &lost.done, 1, 200); /* let it reach the server */
    assert_int_equal(lost.done, 0);
    uint64_t t0 = uv_now(&c->loop);
    proc_stop(&srv);
    assert_int_equal(run_until(&c->loop, &lost.done, 1, 5000), 0);
    assert_int_equal(lost.status, AOS_EUPSTREAM);
    assert_true(lost.at - t0 < 2000);
    assert_non_null(strstr(lost.errmsg, "event stream"));
    assert_true(c->nstate[AOS_UP_BACKOFF] >= 1);
    assert_null(strstr(aos_upstream_last_error(c->up), "s3cret"));

    /* while the server is away it keeps backing off; once it is back the
     * upstream opens a new stream and initializes again */
    int ready_before = c->nstate[AOS_UP_READY];
    run_until(&c->loop, &c->nstate[AOS_UP_BACKOFF], 3, 5000);
    assert_true(c->nstate[AOS_UP_BACKOFF] >= 3);
    assert_int_equal(c->nstate[AOS_UP_READY], ready_before);
    assert_int_equal(proc_start(&srv, argv, envs, 1), 0);
    assert_int_equal(run_until(&c->loop, &c->nstate[AOS_UP_READY], ready_before + 1, 10000), 0);
    call_t back = {0};
    call_tool(c, &back, "echo", json_pack("{s:s}", "message", "back"), 0);
    assert_int_equal(run_until(&c->loop, &back.done, 1, 5000), 0);
    assert_int_equal(back.status, 0);
    assert_string_equal(result_text(&back), "Echo: back");
    call_release(&back);
    up_close(c);
    ctx_free(c);

    /* a wrong token: the stream's 401 is the error, the token is not */
    c = ctx_new();
    sse_cfg(&cfg, url, "wrong-token");
    assert_int_equal(up_open(c, &cfg), 0);
    assert_int_equal(aos_upstream_start(c->up), 0);
    assert_int_equal(run_until(&c->loop, &c->nstate[AOS_UP_BACKOFF], 1, 5000), 0);
    assert_string_equal(aos_upstream_last_error(c->up), "event stream: http 401 Unauthorized");
    ctx_free(c);
    proc_stop(&srv);
}

static int is_backoff(const void *arg)
{
    const ctx_t *c = arg;
    return c->nstate[AOS_UP_BACKOFF] > 0;
}

/* The inline legacy server in mode fails every connection with why. */
static void expect_sse_failure(int port, const char *mode, uint32_t timeout_ms, const char *why)
{
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/sse?mode=%s", port, mode);
    ctx_t *c = ctx_new();
    aos_upstream_cfg_t cfg;
    sse_cfg(&cfg, url, "s3cret");
    if (timeout_ms)
        cfg.request_timeout_ms = timeout_ms;
    assert_int_equal(up_open(c, &cfg), 0);
    assert_int_equal(aos_upstream_start(c->up), 0);
    assert_int_equal(wait_for(&c->loop, is_backoff, c, 5000), 0);
    assert_string_equal(aos_upstream_last_error(c->up), why);
    assert_int_equal(c->nstate[AOS_UP_READY], 0);
    ctx_free(c);
}

/* Issue 12, item 8: what an upstream says becomes a reason without our
 * credentials in it, short and printable. */
static void test_reason_redacts_own_credentials(void **state)
{
    (void)state;
    static const char *const headers[] = {"X-Key: hv-98765", "X-Short: ab", NULL};
    static const char *const env[] = {"API_TOKEN=env-4242", NULL};
    aos_upstream_cfg_t cfg = {.name = "r",
                              .transport = "streamable-http",
                              .url = "https://user:pa55word@h.example/mcp?api_key=abcd1234&v=2",
                              .headers = headers,
                              .env = env,
                              .bearer_token = "tok-123456"};
    ctx_t *c = ctx_new();
    assert_int_equal(up_open(c, &cfg), 0);
    static const char said[] = "no: tok-123456 hv-98765 pa55word user:pa55word abcd1234 ab "
                               "env-4242\x01\xc3\xa9";
    char out[128];
    aos__up_reason(c->up, said, sizeof(said) - 1, out, sizeof(out));
    assert_string_equal(out, "no: [REDACTED] [REDACTED] [REDACTED] [REDACTED] [REDACTED] ab "
                             "[REDACTED] ??");
    /* cut: at most 100 bytes of it, marked */
    char longer[400];
    memset(longer, 'y', sizeof(longer));
    aos__up_reason(c->up, longer, sizeof(longer), out, sizeof(out));
    assert_int_equal(strlen(out), 103);
    assert_string_equal(out + 100, "...");
    /* a small buffer is never overrun */
    char tiny[8];
    aos__up_reason(c->up, longer, sizeof(longer), tiny, sizeof(tiny));
    assert_string_equal(tiny, "yyyy...");
    ctx_free(c);
}

static void test_sse_fake(void **state)
{
    (void)state;
    proc_t srv;
    char *argv[] = {"node", "-e", (char *)fake_legacy_js, NULL};
    assert_int_equal(proc_start(&srv, argv, NULL, 1), 0);
    assert_true(srv.port > 0);
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/sse?mode=ok", srv.port);

    ctx_t *c = ctx_new();
    aos_upstream_cfg_t cfg;
    sse_cfg(&cfg, url, NULL);
    assert_int_equal(up_open(c, &cfg), 0);
    assert_int_equal(aos_upstream_start(c->up), 0);
    assert_int_equal(wait_ready(c, 10000), 0);
    /* the server echoes the version we offer */
    assert_string_equal(aos_upstream_protocol_version(c->up), "2024-11-05");

    call_t k = {0};
    call_tool(c, &k, "echo", json_pack("{s:i}", "v", 1), 0);
    assert_int_equal(run_until(&c->loop, &k.done, 1, 5000), 0);
    assert_int_equal(k.status, 0);
    assert_string_equal(result_text(&k), "gets=1 v=1");
    call_release(&k);

    /* a POST refused: that request fails, the connection stays */
    call_t b = {0};
    call_tool(c, &b, "bad", NULL, 0);
    assert_int_equal(run_until(&c->loop, &b.done, 1, 5000), 0);
    assert_int_equal(b.status, AOS_EUPSTREAM);
    assert_string_equal(b.errmsg, "http 400 Bad Request");
    assert_int_equal(c->nstate[AOS_UP_BACKOFF], 0);

    /* the endpoint is gone (404): reconnect and initialize again */
    call_t f = {0};
    call_tool(c, &f, "forget", NULL, 0);
    assert_int_equal(run_until(&c->loop, &f.done, 1, 5000), 0);
    assert_int_equal(f.status, AOS_EUPSTREAM);
    assert_string_equal(f.errmsg, "the endpoint is gone (http 404)");
    assert_int_equal(run_until(&c->loop, &c->nstate[AOS_UP_READY], 2, 5000), 0);
    call_t k2 = {0};
    call_tool(c, &k2, "echo", json_pack("{s:i}", "v", 2), 0);
    assert_int_equal(run_until(&c->loop, &k2.done, 1, 5000), 0);
    assert_string_equal(result_text(&k2), "gets=2 v=2");
    call_release(&k2);

    /* the server ends the stream under a pending call */
    call_t e = {0};
    call_tool(c, &e, "end", NULL, 0);
    assert_int_equal(run_until(&c->loop, &e.done, 1, 5000), 0);
    assert_int_equal(e.status, AOS_EUPSTREAM);
    assert_string_equal(e.errmsg, "the event stream ended");
    assert_int_equal(run_until(&c->loop, &c->nstate[AOS_UP_READY], 3, 5000), 0);
    assert_int_equal(c->nstate[AOS_UP_BACKOFF], 2);
    ctx_free(c);

    /* an endpoint on another origin (same port, other host): never used */
    expect_sse_failure(srv.port, "evil", 0, "the endpoint is not on the origin of the sse url");
    /* no endpoint event: initialize cannot be sent, and times out */
    expect_sse_failure(srv.port, "mute", 300, "initialize: request timed out after 300 ms");
    expect_sse_failure(srv.port, "json", 0, "the sse url did not answer with an event stream");

    /* nobody listening */
    c = ctx_new();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/sse", free_port());
    sse_cfg(&cfg, url, NULL);
    call_t early = {0};
    assert_int_equal(up_open(c, &cfg), 0);
    assert_int_equal(aos_upstream_start(c->up), 0);
    call_tool(c, &early, "echo", NULL, 0);
    assert_int_equal(wait_for(&c->loop, is_backoff, c, 5000), 0);
    assert_non_null(strstr(aos_upstream_last_error(c->up), "the event stream failed: "));
    assert_int_equal(run_until(&c->loop, &early.done, 1, 1000), 0);
    assert_int_equal(early.status, AOS_EUNAVAIL);
    ctx_free(c);
    proc_stop(&srv);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stdio_everything),
        cmocka_unit_test(test_stdio_timeout_and_cancel),
        cmocka_unit_test(test_stdio_trace_meta),
        cmocka_unit_test(test_stdio_child_killed),
        cmocka_unit_test(test_stdio_garbage),
        cmocka_unit_test(test_stdio_deaf_child),
        cmocka_unit_test(test_stdio_server_request),
        cmocka_unit_test(test_stdio_failures),
        cmocka_unit_test(test_close_from_callback),
        cmocka_unit_test(test_http_fake),
        cmocka_unit_test(test_http_everything),
        cmocka_unit_test(test_sse_endpoint_resolution),
        cmocka_unit_test(test_sse_sdk_server),
        cmocka_unit_test(test_sse_fake),
        cmocka_unit_test(test_reason_redacts_own_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
