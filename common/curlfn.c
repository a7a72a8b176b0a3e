#include "common/curlfn.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/err.h"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static ox_curl_api_t api;
static int load_rc = OX_ESTATE;
static int loaded;  /* api complete and curl_global_init done */
static char load_err[512];

/* The library stays loaded for the life of the process (never dlclosed):
 * curl keeps global state and callbacks into it may be anywhere. */
static void load(void)
{
    const char *name = getenv("OLLAMAX_LIBCURL");
    if (!name || !*name)
        name = "libcurl.so.4";
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(load_err, sizeof(load_err),
                 "cannot load %s (install the libcurl4 package): %s", name, why ? why : "?");
        load_rc = OX_EUNSUPPORTED;
        return;
    }
    const char *missing = NULL;
#define OX_CURL_SYM(field)                                                 \
    do {                                                                   \
        void *p = dlsym(h, "curl_" #field);                                \
        if (!p && !missing)                                                \
            missing = "curl_" #field;                                      \
        api.field = (__typeof__(api.field))p;                              \
    } while (0)
    OX_CURL_SYM(global_init);
    OX_CURL_SYM(global_cleanup);
    OX_CURL_SYM(easy_init);
    OX_CURL_SYM(easy_cleanup);
    OX_CURL_SYM(easy_setopt);
    OX_CURL_SYM(easy_getinfo);
    OX_CURL_SYM(easy_perform);
    OX_CURL_SYM(easy_strerror);
    OX_CURL_SYM(slist_append);
    OX_CURL_SYM(slist_free_all);
    OX_CURL_SYM(multi_init);
    OX_CURL_SYM(multi_cleanup);
    OX_CURL_SYM(multi_setopt);
    OX_CURL_SYM(multi_add_handle);
    OX_CURL_SYM(multi_remove_handle);
    OX_CURL_SYM(multi_socket_action);
    OX_CURL_SYM(multi_assign);
    OX_CURL_SYM(multi_info_read);
#undef OX_CURL_SYM
    if (missing) {
        snprintf(load_err, sizeof(load_err), "%s has no %s (libcurl too old?)", name, missing);
        load_rc = OX_EUNSUPPORTED;
        return;
    }
    CURLcode cc = api.global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK) {
        snprintf(load_err, sizeof(load_err), "curl_global_init failed: %s",
                 api.easy_strerror(cc));
        load_rc = OX_EIO;
        return;
    }
    loaded = 1;
    load_rc = 0;
}

int ox_curl_load(void)
{
    pthread_once(&load_once, load);
    return load_rc;
}

const ox_curl_api_t *ox_curl(void)
{
    /* pthread_once also orders the reads of api after its writes for a
     * thread that did not do the load itself */
    pthread_once(&load_once, load);
    return loaded ? &api : NULL;
}

const char *ox_curl_load_error(void) { return load_err; }

void ox_curl_cleanup(void)
{
    if (loaded) {
        loaded = 0;
        api.global_cleanup();
    }
}
