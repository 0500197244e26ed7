/* wsbeat: keeps many WebSocket feeds connected and alive. main only wires the modules. */
#include <getopt.h>
#include <openssl/crypto.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wsbeat/app.h"
#include "wsbeat/cfg.h"
#include "wsbeat/log.h"
#include "wsbeat/shard.h"
#include "wsbeat/status_client.h"
#include "wsbeat/version.h"
#include "wsbeat/ws.h"

#define EXIT_USAGE 64

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: wsbeat [-c FILE] [-t|--check] [-l LEVEL] [--shard K/N] [-V] [-h]\n"
	    "       wsbeat status [-c FILE [--shard K/N] | --listen ADDR:PORT]\n"
	    "Keeps the WebSocket feeds listed in FILE connected: heartbeats, dead-peer\n"
	    "detection and reconnects with capped exponential backoff.\n"
	    "\n"
	    "  -c, --config FILE   configuration file (default %s)\n"
	    "  -t, --check         validate the configuration, print \"configuration OK\", exit\n"
	    "  -l, --log-level L   error, warning, notice, info or debug (overrides log_level)\n"
	    "      --shard K/N     keep only the feeds that hash to shard K of N (0 <= K < N);\n"
	    "                      overrides the shard setting\n"
	    "  -V, --version       print versions and exit\n"
	    "  -h, --help          print this help and exit\n"
	    "  status, --status    print a table of every feed from the running daemon's\n"
	    "                      /status endpoint (metrics.listen, or --listen ADDR:PORT);\n"
	    "                      with metrics.port_per_shard, of every shard on this host\n"
	    "                      (or of shard K/N only, with --shard)\n"
	    "\n"
	    "Signals: TERM/INT close every feed with 1001 and exit 0 (a second one exits at\n"
	    "once); HUP reloads the configuration (a bad one is logged and the running one\n"
	    "kept); USR1 reopens capture files; USR2 logs one status line per feed.\n"
	    "Exit status: 0 stopped on request, 1 start failure, 64 bad usage, 78 bad config.\n",
	    WSBEAT_DEFAULT_CONFIG);
}

static void version(void)
{
	printf("wsbeat %s\nlibwebsockets %s\n%s\nlibconfig %d.%d.%d\n", WSBEAT_VERSION,
	       ws_lws_version(), OpenSSL_version(OPENSSL_VERSION), LIBCONFIG_VER_MAJOR,
	       LIBCONFIG_VER_MINOR, LIBCONFIG_VER_REVISION);
}

struct opts {
	const char *config;
	const char *level;
	const char *listen; /* status: where the daemon's metrics endpoint is */
	const char *shard;  /* --shard K/N */
	int check;
	int status; /* `wsbeat status` or --status */
};

/* Returns -1 to exit with the status in *status. */
static int parse_args(int argc, char **argv, struct opts *o, int *status)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
	                                         {"status", no_argument, NULL, 's'},
	                                         {"listen", required_argument, NULL, 'L'},
	                                         {"shard", required_argument, NULL, 'S'},
	                                         {"check", no_argument, NULL, 't'},
	                                         {"log-level", required_argument, NULL, 'l'},
	                                         {"version", no_argument, NULL, 'V'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "c:tl:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->status = 1;
			break;
		case 'L':
			o->listen = optarg;
			break;
		case 'S':
			o->shard = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case 't':
			o->check = 1;
			break;
		case 'l':
			o->level = optarg;
			break;
		case 'V':
			version();
			*status = 0;
			return -1;
		case 'h':
			usage(stdout);
			*status = 0;
			return -1;
		default:
			usage(stderr);
			*status = EXIT_USAGE;
			return -1;
		}
	}
	if (optind < argc && strcmp(argv[optind], "status") == 0) {
		o->status = 1;
		optind++;
	}
	if (optind < argc) {
		fprintf(stderr, "wsbeat: unexpected argument '%s'\n", argv[optind]);
		*status = EXIT_USAGE;
		return -1;
	}
	return 0;
}

static int load_config(const struct opts *o, struct cfg **cfg)
{
	char err[1024];

	if (cfg_load(o->config, cfg, err, sizeof(err)) < 0 ||
	    app_check_supported(*cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		cfg_free(*cfg);
		*cfg = NULL;
		return -1;
	}
	return 0;
}

/* `wsbeat status`: a table of every feed, from the running daemon's /status endpoint. */
static int run_status(const struct opts *o)
{
	char listen[300], addr[300], err[1024];
	bool per_shard = false;
	unsigned k, n;
	int rc;

	if (o->listen) {
		snprintf(listen, sizeof(listen), "%s", o->listen);
	} else {
		/* Only the address: the file may have been edited into an invalid state while
		 * the daemon runs the configuration it loaded before. */
		rc = cfg_read_listen(o->config, listen, sizeof(listen), &per_shard, err,
		                     sizeof(err));
		if (rc < 0) {
			fprintf(stderr,
			        "wsbeat status: cannot read metrics.listen: %s (or give "
			        "--listen ADDR:PORT)\n",
			        err);
			return CFG_EXIT_CONFIG;
		}
		if (rc == 0) {
			fprintf(stderr,
			        "wsbeat status: %s has no metrics.listen: the status command reads "
			        "the daemon's /status endpoint (or give --listen ADDR:PORT)\n",
			        o->config);
			return 1;
		}
	}
	if (per_shard && !o->shard) {
		/* Every shard of this host, in one table. */
		rc = status_client_run_shards(listen, stdout, stderr, isatty(STDOUT_FILENO), err,
		                              sizeof(err));
		if (rc != 0)
			fprintf(stderr, "wsbeat status: %s\n", err);
		return rc != 0 ? 1 : 0;
	}
	if (per_shard && shard_parse(o->shard, &k, &n) == 0) {
		if (shard_listen(listen, k, addr, sizeof(addr), err, sizeof(err)) < 0) {
			fprintf(stderr, "wsbeat status: metrics.port_per_shard: %s\n", err);
			return 1;
		}
		snprintf(listen, sizeof(listen), "%s", addr);
	}
	rc = status_client_run(listen, stdout, isatty(STDOUT_FILENO), err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "wsbeat status: %s\n", err);
	return rc < 0 ? 1 : 0;
}

/* metrics.port_per_shard needs the shard's port to exist: known only with the shard. */
static int check_shard_port(const struct opts *o, const struct cfg *c)
{
	const char *spec = o->shard ? o->shard : c->shard;
	char addr[300], why[160];
	unsigned k, n;

	if (!c->metrics_listen || !c->metrics_port_per_shard || !spec ||
	    shard_parse(spec, &k, &n) < 0 ||
	    shard_listen(c->metrics_listen, k, addr, sizeof(addr), why, sizeof(why)) == 0)
		return 0;
	fprintf(stderr, "wsbeat: %s: metrics.port_per_shard: shard %s: %s\n", c->path, spec, why);
	return -1;
}

int main(int argc, char **argv)
{
	struct opts o = {.config = WSBEAT_DEFAULT_CONFIG};
	enum log_level level;
	struct cfg *cfg = NULL;
	struct app app;
	unsigned shard_k, shard_n;
	int status = 0;

	if (parse_args(argc, argv, &o, &status) < 0)
		return status;
	if (o.shard && shard_parse(o.shard, &shard_k, &shard_n) < 0) {
		fprintf(stderr, "wsbeat: --shard must be K/N with 0 <= K < N <= %d\n", SHARD_MAX);
		return EXIT_USAGE;
	}
	if (o.status)
		return run_status(&o);
	if (o.level && log_level_parse(o.level, &level) < 0) {
		fprintf(stderr, "wsbeat: unknown log level '%s'\n", o.level);
		return EXIT_USAGE;
	}
	if (load_config(&o, &cfg) < 0)
		return CFG_EXIT_CONFIG;
	if (check_shard_port(&o, cfg) < 0) {
		cfg_free(cfg);
		return CFG_EXIT_CONFIG;
	}
	if (o.check) {
		struct proxy_env penv;
		/* The environment is not the daemon's under systemd, but a bad proxy variable of
		 * this one is worth a word. */
		if (app_proxy_env_check(&penv) == 0)
			proxy_env_fini(&penv);
		printf("configuration OK\n");
		cfg_free(cfg);
		return 0;
	}
	log_init();
	log_set_level(o.level ? level : cfg->log_level);
	if (app_init(&app, cfg, o.level != NULL, o.shard) < 0) {
		app_fini(&app);
		return 1;
	}
	status = app_run(&app);
	app_fini(&app);
	return status;
}
