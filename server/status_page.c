#include "server/status_page.h"

#include <event2/buffer.h>
#include <string.h>

/* Text escaped for HTML content and attribute values. */
static void
esc(struct evbuffer *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&':
			evbuffer_add(b, "&amp;", 5);
			break;
		case '<':
			evbuffer_add(b, "&lt;", 4);
			break;
		case '>':
			evbuffer_add(b, "&gt;", 4);
			break;
		case '"':
			evbuffer_add(b, "&quot;", 6);
			break;
		case '\'':
			evbuffer_add(b, "&#39;", 5);
			break;
		default:
			evbuffer_add(b, s, 1);
		}
	}
}

zd_err
status_page_render(const json_t *status, struct evbuffer *out)
{
	evbuffer_add_printf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	                         "<meta http-equiv=\"refresh\" content=\"5\">"
	                         "<title>zonedist status</title></head><body>"
	                         "<h1>zonedist</h1><table id=\"zones\">\n");
	const json_t *zones = json_object_get(status, "zones");
	size_t i;
	const json_t *z;
	json_array_foreach(zones, i, z)
	{
		evbuffer_add_printf(out, "<tr class=\"zone\"><td class=\"name\">");
		esc(out, json_string_value(json_object_get(z, "zone")));
		evbuffer_add_printf(out, "</td><td class=\"serial\">%lld</td></tr>\n",
		                    (long long)json_integer_value(json_object_get(z, "serial")));
	}
	evbuffer_add_printf(out, "</table></body></html>\n");
	return ZD_OK;
}
