/* cs_control.c - see cs_control.h. */
#include "cs_control.h"

#include <string.h>

#include "cs_alloc.h"

static cs_rc reply_error(cs_msg *rep, cs_rc code, const char *message, cs_err *err)
{
    cs_msg_init(rep, CS_MSG_ERROR);
    rep->error.code = code;
    rep->error.message = cs_strdup(message);
    if (rep->error.message == NULL)
        return cs_err_set(err, CS_ENOMEM, 0, "control reply");
    return CS_OK;
}

cs_rc cs_control_handle(cs_store *s, const cs_msg *req, int64_t now, cs_msg *rep, cs_err *err)
{
    (void)s;
    (void)now;
    /* The control requests are answered by the next commit of this file (issue 4). */
    return reply_error(rep, CS_ENOTSUP, cs_msg_type_name(req->type), err);
}
