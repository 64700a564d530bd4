/*
 * fuzz_routes.c - libFuzzer target for the routes file (lib/routes.c on lib/conf.c).
 *
 * Each input is loaded as a routes file. A failure must use a documented code,
 * leave the output untouched and explain itself. A success must give a table
 * within WR_ROUTES_MAX, sorted by hostname, where every route is found again
 * by wr_routes_match() (exact names as themselves, "*.suffix" through a name
 * under it); a few fixed hosts are matched too. Any difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warren/err.h"
#include "warren/routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_table(const struct wr_routes *r) {
  static const char *const hosts[] = {
      "myapp.localhost",
      "MyApp.LocalHost:8080",
      "a.b.example.com",
      "[::1]:443",
      "::1",
      "",
      ":",
      "x.",
      "*.example.com",
  };
  char host[300];
  size_t i;

  if (r->n > WR_ROUTES_MAX || (r->n > 0 && r->v == NULL))
    abort();
  for (i = 0; i < r->n; i++) {
    const struct wr_route *route = &r->v[i], *m;

    if (!route->hostname || !route->proxy || !route->connector || !route->node_addr ||
        !route->target)
      abort();
    if (i > 0 && strcmp(r->v[i - 1].hostname, route->hostname) > 0)
      abort();
    if (strncmp(route->hostname, "*.", 2) == 0) {
      snprintf(host, sizeof(host), "x%s", route->hostname + 1);
      m = wr_routes_match(r, host);
      /* "x.suffix" is answered by that exact name if there is one, else by this wildcard. */
      if (m == NULL ||
          (strcmp(m->hostname, host) != 0 && strcmp(m->hostname, route->hostname) != 0))
        abort();
    } else {
      m = wr_routes_match(r, route->hostname);
      if (m == NULL || strcmp(m->hostname, route->hostname) != 0)
        abort();
    }
  }
  for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
    (void)wr_routes_match(r, hosts[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct wr_routes r = {NULL, 0}, untouched = {(struct wr_route *)&r, 7};
  char err[512] = "";
  int rv;

  r = untouched;
  rv = wr_routes_load_mem(&r, "fuzz.yaml", (const char *)data, size, err, sizeof(err));
  if (rv != 0) {
    if (rv != WR_ERR_CONFIG && rv != WR_ERR_TOOBIG && rv != WR_ERR_NOMEM)
      abort();
    if (err[0] == '\0' || r.v != untouched.v || r.n != untouched.n)
      abort();
    return 0;
  }
  check_table(&r);
  wr_routes_free(&r);
  return 0;
}
