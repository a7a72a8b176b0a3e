#include "common/err.h"

const char *ox_strerror(int code)
{
    switch (code) {
#define OX_ERR_MSG(name, c, msg) case c: return msg;
        OX_ERRORS(OX_ERR_MSG)
#undef OX_ERR_MSG
    }
    return "unknown error";
}

const char *ox_errname(int code)
{
    switch (code) {
#define OX_ERR_NAME(name, c, msg) case c: return #name;
        OX_ERRORS(OX_ERR_NAME)
#undef OX_ERR_NAME
    }
    return "OX_E?";
}
