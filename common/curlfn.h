/* curlfn: libcurl loaded on first use instead of linked.
 *
 * Linking libcurl pulls ~25 shared libraries into every ollamax process
 * (GnuTLS via librtmp, Kerberos, LDAP, libssh2, nghttp2, p11-kit, whose
 * constructors run at load), about 6 MB of resident memory that an idle
 * daemon never uses. So the binary does not link libcurl: the first caller
 * that needs an HTTP client (a pull, a CLI command) calls ox_curl_load, which
 * dlopens libcurl.so.4 once, resolves the calls below and runs
 * curl_global_init. Code then calls through the table:
 *
 *     const ox_curl_api_t *C = ox_curl();
 *     CURL *e = C->easy_init();
 *     C->easy_setopt(e, CURLOPT_URL, url);
 *
 * <curl/curl.h> is still included for the types and constants. The library
 * name can be overridden with OLLAMAX_LIBCURL (a path or soname), read once
 * at the first ox_curl_load. */
#ifndef OX_COMMON_CURLFN_H
#define OX_COMMON_CURLFN_H

#include <curl/curl.h>

typedef struct ox_curl_api {
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *e);
    CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
    CURLcode (*easy_perform)(CURL *e);
    const char *(*easy_strerror)(CURLcode cc);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *m);
    CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t fd, int ev_bitmask,
                                     int *running);
    CURLMcode (*multi_assign)(CURLM *m, curl_socket_t fd, void *sockp);
    CURLMsg *(*multi_info_read)(CURLM *m, int *msgs_in_queue);
} ox_curl_api_t;

/* Loads libcurl and runs curl_global_init(CURL_GLOBAL_DEFAULT), once per
 * process; safe to call from any thread, any number of times (later calls
 * return the first call's result). Returns 0, or OX_EUNSUPPORTED when the
 * library is missing or lacks a symbol, OX_EIO when curl_global_init
 * failed; ox_curl_load_error then says why. */
int ox_curl_load(void);

/* The function table (static storage). Loads like ox_curl_load on first
 * use; NULL when loading failed (or after ox_curl_cleanup). Code that got 0
 * from ox_curl_load may use the result without checking it. */
const ox_curl_api_t *ox_curl(void);

/* Why the last ox_curl_load failed, with a hint which package provides
 * libcurl; "" after success. Static storage. */
const char *ox_curl_load_error(void);

/* curl_global_cleanup when loaded, else nothing. Only at process end, once
 * no thread uses curl any more: libcurl is not loaded again afterwards. */
void ox_curl_cleanup(void);

#endif
