/*
 * translate.h - an HTTPProxy as Envoy Gateway configuration: the HTTPRoute
 * that attaches its hostnames and rules to the edge Gateway, and the
 * EnvoyPatchPolicy that sends its connector rules through the tunnel.
 *
 * This is the operator's protocol core: a pure function of the HTTPProxy
 * object, the Gateway settings and what is known of the Connectors it names
 * (a lookup callback). No I/O, no clock. It checks everything it copies, so
 * that an object the API server would refuse, or that Envoy would reject,
 * comes back as a verdict (reason + message for the Accepted condition)
 * instead of a write that fails later. docs/internals/translate.md gives
 * the patch set and why each patch looks the way it does.
 */
#ifndef OPERATOR_TRANSLATE_H
#define OPERATOR_TRANSLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define OP_LISTENERS_MAX 8
#define OP_MSG_MAX 512

/* The edge: where routes attach and what the patches point at. */
struct op_gateway {
  /* The Gateway: in |namespace|, or in each HTTPProxy's own namespace when
   * NULL. An EnvoyPatchPolicy must live in its Gateway's namespace, so for
   * a Gateway elsewhere the policy is named "<proxy ns>.<proxy name>" there
   * and, an owner in another namespace being invalid, has no
   * ownerReference: the operator deletes it when its HTTPProxy is gone. */
  const char *namespace;
  const char *name;
  const char *listeners[OP_LISTENERS_MAX]; /* its HTTPS listeners (sectionName) */
  size_t nlisteners;
  const char *internal_listener; /* "connector-tunnel" (Envoy bootstrap) */
  const char *offline_listener;  /* "connector-offline": answers 503 "tunnel offline" */
  /* The backendRef of connector rules, so that Envoy Gateway builds the
   * cluster httproute/<ns>/<route>/rule/<i> the patch replaces. */
  const char *backend_group;   /* "" for the core group */
  const char *backend_kind;    /* "Service" */
  const char *backend_name;    /* "warren-tunnel" */
  int backend_port;            /* 80 */
  const char *connect_timeout; /* cluster connect_timeout, "10s" */
};

/* What the operator knows of one Connector. */
enum op_conn_state {
  OP_CONN_MISSING,   /* no such Connector */
  OP_CONN_NOT_READY, /* Ready is not True, or no endpoint ID yet */
  OP_CONN_READY
};

struct op_conn_info {
  enum op_conn_state state;
  char endpoint_id[65]; /* lowercase hex, when READY */
};

/* lookup fills |out| for Connector |ns|/|name|. */
typedef void (*op_conn_lookup_fn)(void *ud, const char *ns, const char *name,
                                  struct op_conn_info *out);
/* claim tells whether this HTTPProxy registers |domain| (a tunnel target's
 * host) on the route configuration of |listener|: Envoy refuses a route
 * configuration that lists one domain twice, so when several HTTPProxies
 * tunnel to the same host exactly one of them adds it. NULL: always. */
typedef bool (*op_claim_fn)(void *ud, const char *listener, const char *domain);

/* The verdict, for the HTTPProxy's conditions. */
enum op_verdict {
  OP_OK,
  OP_INVALID /* the spec cannot be translated: Accepted=False */
};

struct op_translation {
  enum op_verdict verdict;
  char reason[64];          /* Accepted reason when OP_INVALID */
  char message[OP_MSG_MAX]; /* what is wrong, naming the field */
  json_t *route;            /* HTTPRoute (apiVersion..spec), NULL when invalid */
  json_t *policy;           /* EnvoyPatchPolicy, NULL without connector rules */
  json_t *hostnames;        /* array: the hostnames routed */
  json_t *connectors;       /* array: distinct Connector names referenced */
  json_t *domains;          /* array: distinct tunnel target hosts */
  size_t connector_rules;   /* rules with a connector backend */
  size_t offline_rules;     /* of those, rules whose connector is not Ready */
  char offline[OP_MSG_MAX]; /* why (first offline connector), for conditions */
};

/* op_translate translates |proxy| (an HTTPProxy object as the API returns
 * it). |owner_uid| NULL: no ownerReferences (render mode). Always fills
 * |out| (free it with op_translation_free); returns 0, or WR_ERR_NOMEM. */
int op_translate(const json_t *proxy, const struct op_gateway *gw, op_conn_lookup_fn lookup,
                 op_claim_fn claim, void *ud, struct op_translation *out);
void op_translation_free(struct op_translation *t);

/* op_policy_name writes the name of the EnvoyPatchPolicy of HTTPProxy
 * |ns|/|name| into |buf| and returns its namespace (the Gateway's). */
const char *op_policy_name(const struct op_gateway *gw, const char *ns, const char *name, char *buf,
                           size_t len);

/* op_proxy_connectors appends to |names| (an array) the distinct Connector
 * names |proxy| references, without validating the rest: for the index that
 * finds the HTTPProxies of a Connector. */
int op_proxy_connectors(const json_t *proxy, json_t *names);
/* op_proxy_domains appends the distinct tunnel target hosts |proxy| names
 * (valid endpoint URLs of connector backends only). */
int op_proxy_domains(const json_t *proxy, json_t *domains);

/* Labels and ownership of the objects the operator writes. */
#define OP_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define OP_MANAGER "warren-operator"
#define OP_LABEL_PROXY "networking.datumapis.com/httpproxy"
#define OP_LABEL_PROXY_NS "networking.datumapis.com/httpproxy-namespace"
#define OP_PROXY_API "networking.datumapis.com/v1alpha"

#endif
