/*
 * daemon.c: running portico.  Opens the logs, binds the listening sockets
 * (one per listener per worker, SO_REUSEPORT), drops privileges, starts the
 * workers and then handles signals on the main thread: SIGTERM/SIGINT
 * graceful stop, SIGHUP reload (SPEC section 10), SIGUSR1 log reopening.
 * Speaks the systemd notify protocol when NOTIFY_SOCKET is set.
 */
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "portico/accesslog.h"
#include "portico/admin.h"
#include "portico/config.h"
#include "portico/daemon.h"
#include "portico/group.h"
#include "portico/health.h"
#include "portico/log.h"
#include "portico/metrics.h"
#include "portico/tls.h"
#include "portico/worker.h"

#define LISTEN_BACKLOG 4096

struct daemon {
	const char *path;
	struct config *cfg;
	struct listen_set *set;
	struct worker *workers;
	unsigned nworkers;
	struct worker_shared shared;
	struct event_base *base;
	unsigned generation;
	struct admin *admin;
	struct health *health; /* active checks of upstream groups, on this thread */
	uint64_t reloads_ok, reloads_error;
	struct event *signals[4];
};

/* --- systemd notify -------------------------------------------------------- */

static void
sd_notify_send(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t len;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	len = strlen(path);
	if (len >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, len);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) == -1)
		log_warn("sd_notify: %s", strerror(errno));
	close(fd);
}

static void
sd_notify_reloading(void)
{
	struct timespec ts;
	char msg[96];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull +
		     (unsigned long long)ts.tv_nsec / 1000);
	sd_notify_send(msg);
}

/* --- listening sockets ----------------------------------------------------- */

static int
listen_socket(const struct config_listen *l, const char **why)
{
	struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
	const struct sockaddr *sa = (const struct sockaddr *)&l->sa;
	socklen_t salen = l->salen;
	int one = 1, zero = 0, fd;

	if (l->any) {
		any.sin6_port = ((const struct sockaddr_in *)&l->sa)->sin_port;
		sa = (const struct sockaddr *)&any;
		salen = sizeof(any);
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		*why = "socket";
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail_opt;
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, l->any ? &zero : &one, sizeof(one)) == -1)
		goto fail_opt;
	if (bind(fd, sa, salen) == -1) {
		*why = "bind";
		goto fail;
	}
	if (listen(fd, LISTEN_BACKLOG) == -1) {
		*why = "listen";
		goto fail;
	}
	return fd;
fail_opt:
	*why = "setsockopt";
fail : {
	int e = errno;

	close(fd);
	errno = e;
}
	return -1;
}

static void
listen_set_free(struct listen_set *set, bool close_fds, unsigned nworkers)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++) {
		if (close_fds)
			for (unsigned w = 0; w < nworkers; w++)
				if (set->socks[i].fds[w] >= 0)
					close(set->socks[i].fds[w]);
		free(set->socks[i].address);
		free(set->socks[i].fds);
		tls_server_unref(set->socks[i].tls_server);
	}
	free(set->socks);
	free(set);
}

static const struct listen_sock *
listen_set_find(const struct listen_set *old, const struct config_listen *l)
{
	for (size_t i = 0; old && i < old->n; i++) {
		const struct listen_sock *s = &old->socks[i];

		if (s->salen == l->salen && s->any == l->any && s->tls == l->tls &&
		    memcmp(&s->sa, &l->sa, l->salen) == 0)
			return s;
	}
	return NULL;
}

/*
 * The sockets of `cfg`'s listeners: those also in `old` are shared (same
 * fds), the others bound now.  NULL when a bind fails (logged); new sockets
 * are then closed again.
 */
static struct listen_set *
listen_set_build(const struct config *cfg, const struct listen_set *old, unsigned nworkers)
{
	struct listen_set *set = xcalloc(1, sizeof(*set));
	const char *why = NULL;

	set->socks = xcalloc(cfg->nlisten ? cfg->nlisten : 1, sizeof(*set->socks));
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct config_listen *l = &cfg->listen[i];
		const struct listen_sock *prev = listen_set_find(old, l);
		struct listen_sock *s = &set->socks[set->n++];

		s->address = xstrdup(l->address);
		s->sa = l->sa;
		s->salen = l->salen;
		s->any = l->any;
		s->tls = l->tls;
		s->fds = xmalloc(nworkers * sizeof(int));
		for (unsigned w = 0; w < nworkers; w++)
			s->fds[w] = -1;
		/* This load's certificates (tls.h), for reused sockets too. */
		s->tls_server = l->tls_server ? tls_server_ref(l->tls_server) : NULL;
		for (unsigned w = 0; w < nworkers; w++) {
			s->fds[w] = prev ? prev->fds[w] : listen_socket(l, &why);
			if (s->fds[w] == -1) {
				log_error("%s:%d:%d: listen %s: %s: %s", cfg->path, l->line, l->col,
					  l->address, why, strerror(errno));
				goto fail;
			}
		}
	}
	return set;
fail:
	/* Close only what this call opened. */
	for (size_t i = 0; i < set->n; i++) {
		struct listen_sock *s = &set->socks[i];

		for (unsigned w = 0; w < nworkers; w++)
			if (s->fds[w] == -1)
				break;
			else if (!listen_set_find(old, &cfg->listen[i]))
				close(s->fds[w]);
		free(s->address);
		free(s->fds);
		tls_server_unref(s->tls_server);
	}
	free(set->socks);
	free(set);
	return NULL;
}

/* --- privileges ------------------------------------------------------------ */

static int
drop_privileges(const struct config *cfg)
{
	struct passwd *pw;
	struct group *gr;
	gid_t gid;

	if (getuid() != 0 || cfg->user == NULL)
		return 0;
	pw = getpwnam(cfg->user);
	if (pw == NULL) {
		log_error("user %s: no such user", cfg->user);
		return -1;
	}
	gid = pw->pw_gid;
	if (cfg->group != NULL) {
		gr = getgrnam(cfg->group);
		if (gr == NULL) {
			log_error("group %s: no such group", cfg->group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (setgroups(1, &gid) == -1 || setgid(gid) == -1 || setuid(pw->pw_uid) == -1) {
		log_error("dropping privileges to %s: %s", cfg->user, strerror(errno));
		return -1;
	}
	return 0;
}

/* --- the admin listener ------------------------------------------------------ */

/* What /metrics serves: every worker's counters and the daemon's own. */
static void
daemon_collect(struct metrics_sum *s, void *arg)
{
	struct daemon *d = arg;

	for (unsigned i = 0; i < d->nworkers; i++)
		metrics_sum_add(s, d->workers[i].metrics);
	s->reloads_ok = d->reloads_ok;
	s->reloads_error = d->reloads_error;
	s->generation = d->generation;
	s->accesslog_dropped = accesslog_dropped();
}

/* GET /upstreams and the per-server series of /metrics, from the running snapshot. */
static void
daemon_groups(struct buf *out, bool json, void *arg)
{
	struct daemon *d = arg;

	if (json)
		group_write_json(d->cfg, out, worker_mono_us());
	else
		group_write_metrics(d->cfg, out, worker_mono_us());
}

/* (Re)binds the admin listener to cfg's admin.listen; -1 logged. */
static int
daemon_admin_listen(struct daemon *d, const struct config *cfg)
{
	const struct sockaddr *sa = (const struct sockaddr *)&cfg->admin.sa;
	const char *why = "bind";

	if (admin_listen(d->admin, cfg->admin.listen ? sa : NULL, cfg->admin.salen, &why) == 0)
		return 0;
	log_error("admin listen %s: %s: %s", cfg->admin.listen, why, strerror(errno));
	return -1;
}

/* --- signals ----------------------------------------------------------------- */

static void
daemon_reload_failed(struct daemon *d, struct config *cfg, const char *err)
{
	if (err != NULL)
		log_error("reload failed, keeping the running configuration: %s", err);
	else
		log_error("reload failed, keeping the running configuration");
	config_unref(cfg);
	d->reloads_error++;
	sd_notify_send("READY=1\nSTATUS=reload failed");
}

/* --- the open-file limit ----------------------------------------------------- */

/*
 * Descriptors besides connections: standard streams, logs, the main loop,
 * the admin listener, its 2 spare descriptors and up to 16 admin
 * connections, and per worker its
 * listeners, event loop, wake-up eventfd and resolver sockets.
 */
static rlim_t
nofile_reserve(const struct config *cfg, unsigned nworkers)
{
	return 48 + (rlim_t)nworkers * (cfg->nlisten + 4);
}

/*
 * Each client connection may hold an upstream connection too.  Raises the
 * soft open-file limit to the hard one when the configuration needs more;
 * when even that is short, warns and caps the clients accepted at what the
 * limit leaves room for (worker_shared.fd_clients), so that accepting pauses
 * before descriptors run out and upstream connections and the admin
 * listener keep theirs.
 */
static void
daemon_check_nofile(struct daemon *d, const struct config *cfg)
{
	rlim_t reserve = nofile_reserve(cfg, d->nworkers);
	rlim_t need = (rlim_t)cfg->limits.connections * 2 + reserve, was;
	struct rlimit rl;
	uint64_t cap;

	atomic_store(&d->shared.fd_clients, 0);
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= need)
		return;
	was = rl.rlim_cur;
	if (rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_info("open-file limit raised from %llu to %llu",
				 (unsigned long long)was, (unsigned long long)rl.rlim_cur);
		else
			rl.rlim_cur = was;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return;
	cap = rl.rlim_cur > reserve + 2 ? (uint64_t)(rl.rlim_cur - reserve) / 2 : 1;
	atomic_store(&d->shared.fd_clients, cap);
	log_warn("limits.connections %llu needs about %llu file descriptors (a client and an "
		 "upstream connection each) but the open-file limit is %llu: accepting pauses at "
		 "%llu clients; raise the limit (LimitNOFILE=, ulimit -n) or lower "
		 "limits.connections",
		 (unsigned long long)cfg->limits.connections, (unsigned long long)need,
		 (unsigned long long)rl.rlim_cur, (unsigned long long)cap);
}

static void
daemon_reload(struct daemon *d)
{
	struct listen_set *set, *old = d->set;
	struct config *cfg;
	char *err = NULL;

	sd_notify_reloading();
	cfg = config_load(d->path, &err);
	if (cfg == NULL) {
		daemon_reload_failed(d, NULL, err ? err : "unknown error");
		free(err);
		return;
	}
	if (daemon_admin_listen(d, cfg) == -1) {
		daemon_reload_failed(d, cfg, NULL);
		return;
	}
	set = listen_set_build(cfg, old, d->nworkers);
	if (set == NULL) {
		daemon_admin_listen(d, d->cfg); /* back to the running address */
		daemon_reload_failed(d, cfg, NULL);
		return;
	}
	d->reloads_ok++;
	daemon_check_nofile(d, cfg);
	cfg->generation = ++d->generation;
	log_set_level(cfg->log.level);
	/* Servers that stay keep their health; before any worker sees the snapshot. */
	group_adopt_state(cfg, d->cfg);
	for (unsigned i = 0; i < d->nworkers; i++)
		worker_post_config(&d->workers[i], cfg, set);
	/* Workers own their fds now: removed ones are closed by the workers. */
	listen_set_free(old, false, d->nworkers);
	d->set = set;
	config_unref(d->cfg);
	d->cfg = cfg;
	health_set_config(d->health, cfg);
	for (size_t i = 0; i < cfg->nwarnings; i++)
		log_warn("%s", cfg->warnings[i]);
	if (cfg->workers != d->nworkers)
		log_warn("workers: %u in the new configuration; %u keep running until a restart",
			 cfg->workers, d->nworkers);
	log_info("configuration reloaded generation=%u", cfg->generation);
	sd_notify_send("READY=1\nSTATUS=running");
}

static void
daemon_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		log_info("stopping on signal %d", (int)sig);
		sd_notify_send("STOPPING=1");
		for (unsigned i = 0; i < d->nworkers; i++)
			worker_post_stop(&d->workers[i]);
		event_base_loopexit(d->base, NULL);
		break;
	case SIGHUP:
		daemon_reload(d);
		break;
	case SIGUSR1:
		if (log_reopen() == -1)
			log_error("reopening the error log: %s", strerror(errno));
		accesslog_reopen();
		break;
	}
}

static int
daemon_start_workers(struct daemon *d)
{
	uint64_t start = (uint64_t)time(NULL);

	d->workers = xcalloc(d->nworkers, sizeof(*d->workers));
	for (unsigned i = 0; i < d->nworkers; i++)
		if (worker_init(d->workers, i, d->nworkers, &d->shared, d->cfg, d->set, start) ==
		    -1) {
			log_error("worker %u: cannot start", i);
			return -1;
		}
	for (unsigned i = 0; i < d->nworkers; i++)
		if (worker_start(&d->workers[i]) == -1) {
			log_error("worker %u: cannot create its thread", i);
			return -1;
		}
	return 0;
}

static int
daemon_open_logs(const struct config *cfg)
{
	if (log_open(cfg->log.error) == -1) {
		log_error("error log %s: %s", cfg->log.error, strerror(errno));
		return -1;
	}
	log_set_level(cfg->log.level);
	if (accesslog_open(cfg->log.access ? cfg->log.access : "stdout", cfg->log.format) == -1) {
		log_error("access log %s: %s", cfg->log.access, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Signal events are added before any socket is bound: once a listener
 * accepts, a SIGTERM must already mean a graceful stop, never the default
 * disposition.  Signals that arrive during start-up wait for the loop.
 */
static void
daemon_signals_add(struct daemon *d)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};

	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		d->signals[i] = evsignal_new(d->base, sigs[i], daemon_signal_cb, d);
		evsignal_add(d->signals[i], NULL);
	}
}

static void
daemon_signals_free(struct daemon *d)
{
	for (size_t i = 0; i < ARRAY_SIZE(d->signals); i++)
		if (d->signals[i] != NULL)
			event_free(d->signals[i]);
}

static void
daemon_loop(struct daemon *d)
{
	sd_notify_send("READY=1\nSTATUS=running");
	log_info("portico %s running with %u workers", PORTICO_VERSION, d->nworkers);
	event_base_dispatch(d->base);
}

int
daemon_run(const char *path, struct config *cfg)
{
	struct daemon d = {.path = path, .cfg = cfg};
	int status = 1;
	unsigned started;

	evthread_use_pthreads();
	signal(SIGPIPE, SIG_IGN);
	d.nworkers = cfg->workers ? cfg->workers : 1;
	d.generation = cfg->generation = 1;
	d.base = event_base_new();
	if (d.base == NULL || daemon_open_logs(cfg) == -1)
		goto out;
	daemon_signals_add(&d);
	daemon_check_nofile(&d, cfg);
	/* The admin socket first: once a public listener answers, /metrics does too. */
	d.admin = admin_new(d.base, daemon_collect, &d);
	admin_set_groups(d.admin, daemon_groups);
	if (daemon_admin_listen(&d, cfg) == -1)
		goto out;
	d.set = listen_set_build(cfg, NULL, d.nworkers);
	if (d.set == NULL || drop_privileges(cfg) == -1)
		goto out;
	if (daemon_start_workers(&d) == -1) {
		for (unsigned i = 0; i < d.nworkers; i++)
			if (d.workers[i].base)
				worker_post_stop(&d.workers[i]);
		goto out;
	}
	d.health = health_new(d.base);
	health_set_config(d.health, d.cfg);
	daemon_loop(&d);
	status = 0;
out:
	started = d.workers ? d.nworkers : 0;
	for (unsigned i = 0; i < started; i++)
		if (d.workers[i].thread)
			worker_join(&d.workers[i]);
	for (unsigned i = 0; i < started; i++)
		if (d.workers[i].base)
			worker_destroy(&d.workers[i]);
	health_free(d.health);
	admin_free(d.admin);
	daemon_signals_free(&d);
	free(d.workers);
	/* Every worker closed its own sockets; on a failed start close them here. */
	listen_set_free(d.set, started == 0, d.nworkers);
	accesslog_close();
	config_unref(d.cfg);
	if (d.base)
		event_base_free(d.base);
	if (status == 0)
		log_info("stopped");
	return status;
}
