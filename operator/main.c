/*
 * main.c - warren-operator: parses the command line and runs the manager
 * or the render mode; nothing else.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager.h"
#include "render.h"
#include "warren/cli.h"
#include "warren/err.h"
#include "warren/log.h"
#include "warren/loop.h"

struct opts {
  struct wr_cli_common common;
  struct op_manager_opts m;
  char backend[300];
  char health[64], metrics[64];
  bool offline;
};

static void usage(FILE *fp) {
  fprintf(
      fp,
      "usage: warren-operator [run] [options]\n"
      "       warren-operator render [--gateway NAME] [--listener NAME ...] [--offline] FILE...\n"
      "\n"
      "  run     reconcile HTTPProxy and Connector objects (the default)\n"
      "  render  print the HTTPRoute and EnvoyPatchPolicy the operator would write for the\n"
      "          HTTPProxy and Connector manifests in FILE... (no cluster needed)\n"
      "\n"
      "  --kubeconfig PATH            API access (default: $KUBECONFIG, in-cluster, "
      "~/.kube/config)\n"
      "  --namespace NS               watch only NS ($WARREN_NAMESPACE; default: all)\n"
      "  --gateway [NS/]NAME          the edge Gateway: in NS, or in each HTTPProxy's namespace\n"
      "                               ($WARREN_GATEWAY; default edge)\n"
      "  --listener NAME              an HTTPS listener of it; repeatable ($WARREN_LISTENERS,\n"
      "                               comma-separated; default https)\n"
      "  --internal-listener NAME     Envoy internal listener of the tunnel (connector-tunnel)\n"
      "  --offline-listener NAME      internal listener answering 503 (connector-offline)\n"
      "  --backend-ref KIND/NAME:PORT backendRef of connector rules (Service/warren-tunnel:80)\n"
      "  --lease-duration SECONDS     of the Leases created for Connectors (30)\n"
      "  --workers N                  concurrent reconciles per controller (8)\n"
      "  --leader-elect               run as one of several replicas\n"
      "  --leader-election-namespace NS, --leader-election-id NAME (warren-operator)\n"
      "  --health-probe-bind-address ADDR   /healthz and /readyz (:8081; 0: off)\n"
      "  --metrics-bind-address ADDR        /metrics (:8080; 0: off)\n"
      "  --offline                    render: treat every Connector as not Ready\n"
      "  --log-level error|warn|info|debug, --trace LIST (kube,conf,all)\n");
}

/* bind_addr turns ":8081" into "0.0.0.0:8081"; "0" means off (NULL). */
static const char *bind_addr(const char *arg, char *buf, size_t len) {
  if (strcmp(arg, "0") == 0)
    return NULL;
  if (arg[0] == ':')
    snprintf(buf, len, "0.0.0.0%s", arg);
  else
    snprintf(buf, len, "%s", arg);
  return buf;
}

/* backend_ref parses KIND/NAME:PORT (KIND may be GROUP/KIND... no: the
 * core group is implied for Service; "Backend" means gateway.envoyproxy.io). */
static int backend_ref(struct opts *o, const char *arg) {
  struct op_gateway *gw = &o->m.set.gw;
  char *slash, *colon;
  long port;

  snprintf(o->backend, sizeof(o->backend), "%s", arg);
  slash = strchr(o->backend, '/');
  colon = strrchr(o->backend, ':');
  if (slash == NULL || colon == NULL || colon < slash)
    return -1;
  *slash = *colon = '\0';
  port = strtol(colon + 1, NULL, 10);
  if (port < 1 || port > 65535 || slash[1] == '\0')
    return -1;
  gw->backend_kind = o->backend;
  gw->backend_group = strcmp(o->backend, "Backend") == 0 ? "gateway.envoyproxy.io" : "";
  gw->backend_name = slash + 1;
  gw->backend_port = (int)port;
  return 0;
}

/* gateway_ref takes NAME (in each HTTPProxy's namespace) or NS/NAME. */
static int gateway_ref(struct op_gateway *gw, char *arg) {
  char *slash = strchr(arg, '/');

  gw->namespace = NULL;
  gw->name = arg;
  if (slash != NULL) {
    *slash = '\0';
    gw->namespace = arg;
    gw->name = slash + 1;
  }
  if (gw->name[0] == '\0' || (gw->namespace != NULL && gw->namespace[0] == '\0')) {
    log_warnx("--gateway: expected NAME or NAMESPACE/NAME");
    return -1;
  }
  return 0;
}

static int add_listener(struct op_gateway *gw, const char *name) {
  if (gw->nlisteners == OP_LISTENERS_MAX) {
    log_warnx("at most %d --listener", OP_LISTENERS_MAX);
    return -1;
  }
  gw->listeners[gw->nlisteners++] = name;
  return 0;
}

static int parse(struct opts *o, int argc, char **argv) {
  enum {
    KUBECONFIG = 256,
    NS,
    GW,
    LISTENER,
    INTERNAL,
    OFFLINE_L,
    BACKEND,
    LEASE,
    WORKERS,
    LEADER,
    LEADER_NS,
    LEADER_ID,
    HEALTH,
    METRICS,
    OFFLINE
  };
  static const struct option longopts[] = {
      {"kubeconfig", required_argument, NULL, KUBECONFIG},
      {"namespace", required_argument, NULL, NS},
      {"gateway", required_argument, NULL, GW},
      {"listener", required_argument, NULL, LISTENER},
      {"internal-listener", required_argument, NULL, INTERNAL},
      {"offline-listener", required_argument, NULL, OFFLINE_L},
      {"backend-ref", required_argument, NULL, BACKEND},
      {"lease-duration", required_argument, NULL, LEASE},
      {"workers", required_argument, NULL, WORKERS},
      {"leader-elect", no_argument, NULL, LEADER},
      {"leader-election-namespace", required_argument, NULL, LEADER_NS},
      {"leader-election-id", required_argument, NULL, LEADER_ID},
      {"health-probe-bind-address", required_argument, NULL, HEALTH},
      {"metrics-bind-address", required_argument, NULL, METRICS},
      {"offline", no_argument, NULL, OFFLINE},
      WR_CLI_COMMON_LONGOPTS,
      {NULL, 0, NULL, 0}};
  struct op_gateway *gw = &o->m.set.gw;
  const char *env;
  long v;
  int ch, r;

  while ((ch = getopt_long(argc, argv, WR_CLI_COMMON_OPTSTRING, longopts, NULL)) != -1) {
    switch (ch) {
    case KUBECONFIG:
      o->m.kubeconfig = optarg;
      break;
    case NS:
      o->m.set.namespace = optarg;
      break;
    case GW:
      if (gateway_ref(gw, optarg) < 0)
        return -1;
      break;
    case LISTENER:
      if (add_listener(gw, optarg) < 0)
        return -1;
      break;
    case INTERNAL:
      gw->internal_listener = optarg;
      break;
    case OFFLINE_L:
      gw->offline_listener = optarg;
      break;
    case BACKEND:
      if (backend_ref(o, optarg) < 0) {
        log_warnx("--backend-ref: expected KIND/NAME:PORT, e.g. Service/warren-tunnel:80");
        return -1;
      }
      break;
    case LEASE:
    case WORKERS:
      v = strtol(optarg, NULL, 10);
      if (v < 1 || v > (ch == LEASE ? 3600 : 256)) {
        log_warnx("--%s: out of range", ch == LEASE ? "lease-duration" : "workers");
        return -1;
      }
      if (ch == LEASE)
        o->m.set.lease_duration_s = v;
      else
        o->m.set.workers = (unsigned)v;
      break;
    case LEADER:
      o->m.leader_elect = true;
      break;
    case LEADER_NS:
      o->m.leader_ns = optarg;
      break;
    case LEADER_ID:
      o->m.leader_name = optarg;
      break;
    case HEALTH:
      o->m.health_addr = bind_addr(optarg, o->health, sizeof(o->health));
      break;
    case METRICS:
      o->m.metrics_addr = bind_addr(optarg, o->metrics, sizeof(o->metrics));
      break;
    case OFFLINE:
      o->offline = true;
      break;
    default:
      r = wr_cli_common_opt(&o->common, ch, optarg);
      if (r == 1)
        break;
      if (ch == 'h') {
        usage(stdout);
        exit(0);
      }
      if (r == 0)
        usage(stderr);
      return -1;
    }
  }
  if (o->m.set.namespace == NULL && (env = getenv("WARREN_NAMESPACE")) != NULL && *env)
    o->m.set.namespace = env;
  if (gw->name == NULL) {
    static char gwbuf[512];
    snprintf(gwbuf, sizeof(gwbuf), "%s",
             (env = getenv("WARREN_GATEWAY")) != NULL && *env ? env : "edge");
    if (gateway_ref(gw, gwbuf) < 0)
      return -1;
  }
  if (gw->nlisteners == 0 && (env = getenv("WARREN_LISTENERS")) != NULL && *env) {
    static char list[512];
    char *save = NULL, *tok;
    snprintf(list, sizeof(list), "%s", env);
    for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
      if (add_listener(gw, tok) < 0)
        return -1;
  }
  if (gw->nlisteners == 0)
    gw->listeners[gw->nlisteners++] = "https";
  return 0;
}

struct run {
  uv_loop_t *loop;
  op_manager *m;
};

static void on_stopped(void *arg) {
  (void)arg;
}

static void on_signal(void *arg) {
  struct run *r = arg;

  log_info("stopping");
  op_manager_stop(r->m, on_stopped, r);
}

static int run(struct opts *o) {
  uv_loop_t loop;
  struct run r = {&loop, NULL};
  int rv;

  uv_loop_init(&loop);
  rv = op_manager_new(&r.m, &loop, &o->m);
  if (rv == 0)
    rv = wr_loop_signals(&loop, on_signal, &r);
  if (rv == 0)
    rv = op_manager_start(r.m);
  if (rv == 0)
    uv_run(&loop, UV_RUN_DEFAULT);
  else if (r.m != NULL)
    op_manager_stop(r.m, NULL, NULL), uv_run(&loop, UV_RUN_DEFAULT);
  if (rv == 0 && op_manager_failed(r.m))
    rv = -1;
  /* handles first (the manager embeds one), then the memory */
  wr_loop_close_all(&loop);
  op_manager_del(r.m);
  uv_loop_close(&loop);
  return rv == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  struct opts o;
  const char *cmd = "run";
  int rv;

  memset(&o, 0, sizeof(o));
  log_init("warren-operator", WR_LOG_INFO);
  if (argc > 1 && argv[1][0] != '-') {
    cmd = argv[1];
    argv++;
    argc--;
  }
  if (wr_cli_common_init(&o.common, "operator") < 0)
    return 2;
  o.m.set.gw = (struct op_gateway){.internal_listener = "connector-tunnel",
                                   .offline_listener = "connector-offline",
                                   .backend_group = "",
                                   .backend_kind = "Service",
                                   .backend_name = "warren-tunnel",
                                   .backend_port = 80,
                                   .connect_timeout = "10s"};
  o.m.set.lease_duration_s = 30;
  o.m.set.workers = 8;
  o.m.leader_name = "warren-operator";
  o.m.health_addr = "0.0.0.0:8081";
  o.m.metrics_addr = "0.0.0.0:8080";
  if (parse(&o, argc, argv) < 0 || wr_cli_common_apply(&o.common) < 0)
    return 2;
  if (strcmp(cmd, "render") == 0) {
    if (optind >= argc) {
      usage(stderr);
      return 2;
    }
    rv = op_render(&o.m.set.gw, argv + optind, (size_t)(argc - optind), o.offline, stdout);
    return rv < 0 ? 2 : rv;
  }
  if (strcmp(cmd, "run") != 0 || optind < argc) {
    usage(stderr);
    return 2;
  }
  return run(&o);
}
