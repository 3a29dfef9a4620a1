/* server/migrations.h -- the zonedist schema migrations compiled into the
 * binary (generated from schema/migrations/ by scripts/embed_sql.py), so a
 * zonedistd always carries the schema it expects. */
#ifndef ZD_MIGRATIONS_H
#define ZD_MIGRATIONS_H

#include <stddef.h>

struct zd_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct zd_migration zd_migrations[];
extern const size_t zd_migrations_count;

#endif
