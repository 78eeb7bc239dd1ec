/* NATS credentials from the environment (issue 5): a server with TLS and user/password
 * authorization; the ingress connects with REQRUN_NATS_USER / _PASSWORD / _TLS_CA and is
 * ready; a wrong password or an untrusted CA makes it exit at once instead of serving. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[256];
static char url[96];
static rt_proc server;

static bool run(const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "cd '%s' && (%s) >>openssl.log 2>&1", dir, cmd);
    return system(full) == 0;
}

static int setup(void **state)
{
    (void)state;
    rt_tmpdir(dir, sizeof dir, "reqrun-natsauth");
    /* a throwaway CA and a server certificate for 127.0.0.1 */
    if (!run("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 "
             "-subj /CN=reqrun-test-ca") ||
        !run("openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
             "-subj /CN=127.0.0.1") ||
        !run("printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && openssl x509 -req -in "
             "server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 "
             "-extfile san.ext") ||
        !run("openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other-ca.pem "
             "-days 1 -subj /CN=someone-else"))
        return -1;
    int port = rt_free_port();
    char conf[600], text[1400];
    snprintf(conf, sizeof conf, "%s/nats.conf", dir);
    snprintf(text, sizeof text,
             "listen: 127.0.0.1:%d\nmax_payload: 8MB\n"
             "tls { cert_file: \"%s/server.pem\", key_file: \"%s/server.key\" }\n"
             "authorization { users = [ { user: reqrun, password: \"s3cret-pw\" } ] }\n"
             "jetstream { store_dir: \"%s/store\" }\n",
             port, dir, dir, dir);
    if (!rt_write_file(conf, text))
        return -1;
    char *argv[] = {"/usr/sbin/nats-server", "-c", conf, NULL};
    if (!rt_proc_start(&server, "nats", argv, NULL, dir, false))
        return -1;
    snprintf(url, sizeof url, "tls://127.0.0.1:%d", port);
    rt_sleep_ms(rt_ms(500));
    return rt_proc_alive(&server) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rt_proc_stop(&server, SIGTERM, 10000);
    rt_rmdir(dir);
    return 0;
}

/* Starts reqrun-ingress against the server; returns its exit status when it exits on
 * its own within a few seconds, or 0 after readyz answered 200 (then it is stopped). */
static int ingress_with(const char *user, const char *password, const char *ca)
{
    char e_url[160], e_user[64], e_pw[64], e_ca[320], e_listen[64];
    int port = rt_free_port();
    snprintf(e_url, sizeof e_url, "REQRUN_NATS_URL=%s", url);
    snprintf(e_user, sizeof e_user, "REQRUN_NATS_USER=%s", user);
    snprintf(e_pw, sizeof e_pw, "REQRUN_NATS_PASSWORD=%s", password);
    snprintf(e_ca, sizeof e_ca, "REQRUN_NATS_TLS_CA=%s/%s", dir, ca);
    snprintf(e_listen, sizeof e_listen, "REQRUN_LISTEN=127.0.0.1:%d", port);
    char *env[] = {e_url, e_user, e_pw, e_ca, e_listen, NULL};
    char *argv[] = {RT_BIN_DIR "/reqrun-ingress", NULL};
    rt_proc p;
    assert_true(rt_proc_start(&p, "ingress", argv, env, dir, true));
    char ready[96];
    snprintf(ready, sizeof ready, "http://127.0.0.1:%d/readyz", port);
    int64_t until = rt_now_ms() + rt_ms(15000);
    while (rt_now_ms() < until) {
        if (!rt_proc_alive(&p))
            return p.exit_status;
        rt_resp r;
        bool ok = rt_http(&r, "GET", ready, NULL, NULL, 1000) && r.status == 200;
        rt_resp_free(&r);
        if (ok) {
            assert_int_equal(rt_proc_stop(&p, SIGTERM, 10000), 0);
            return 0;
        }
        rt_sleep_ms(50);
    }
    rt_proc_stop(&p, SIGKILL, 1000);
    fail_msg("the ingress neither became ready nor exited");
    return -1;
}

static void test_user_password_over_tls(void **state)
{
    (void)state;
    assert_int_equal(ingress_with("reqrun", "s3cret-pw", "ca.pem"), 0);
}

static void test_wrong_password_refused_at_once(void **state)
{
    (void)state;
    int64_t t0 = rt_now_ms();
    assert_int_not_equal(ingress_with("reqrun", "wrong", "ca.pem"), 0);
    assert_true(rt_now_ms() - t0 < rt_ms(10000));
}

static void test_untrusted_server_certificate_refused(void **state)
{
    (void)state;
    assert_int_not_equal(ingress_with("reqrun", "s3cret-pw", "other-ca.pem"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_password_over_tls),
        cmocka_unit_test(test_wrong_password_refused_at_once),
        cmocka_unit_test(test_untrusted_server_certificate_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
