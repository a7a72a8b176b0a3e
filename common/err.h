/* Error codes shared by every module.
 *
 * Functions return 0 on success or one of these negative codes. The list is
 * declared once; the enum and the messages are generated from it so they can
 * never drift apart. */
#ifndef OX_ERR_H
#define OX_ERR_H

#define OX_ERRORS(X)                                              \
    X(OX_OK, 0, "success")                                        \
    X(OX_ENOMEM, -1, "out of memory")                             \
    X(OX_EIO, -2, "input/output error")                           \
    X(OX_EINVAL, -3, "invalid argument")                          \
    X(OX_ENOTFOUND, -4, "not found")                              \
    X(OX_EEXIST, -5, "already exists")                            \
    X(OX_EDIGEST, -6, "digest mismatch")                          \
    X(OX_EFORMAT, -7, "malformed data")                           \
    X(OX_ETOOBIG, -8, "too large")                                \
    X(OX_EBUSY, -9, "busy")                                       \
    X(OX_ENET, -10, "network error")                              \
    X(OX_EUNSUPPORTED, -11, "unsupported")                        \
    X(OX_ECANCELED, -12, "canceled")                              \
    X(OX_EDB, -13, "index error")                                 \
    X(OX_ESTATE, -14, "invalid state")                            \
    X(OX_ETIMEOUT, -15, "timed out")

enum {
#define OX_ERR_ENUM(name, code, msg) name = (code),
    OX_ERRORS(OX_ERR_ENUM)
#undef OX_ERR_ENUM
};

/* Message for an OX_E* code; never NULL, static storage. */
const char *ox_strerror(int code);

/* Symbolic name ("OX_ENOTFOUND") for an OX_E* code; never NULL. */
const char *ox_errname(int code);

#endif
