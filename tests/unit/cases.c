/* cases.c - the data-driven runner. */
#include "cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
cases_name(const json_t *row)
{
	const char *name = json_string_value(json_object_get(row, "case"));

	return name != NULL ? name : "(unnamed case)";
}

void
cases_check_keys(const json_t *row, const char *const *allowed, size_t n)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)row, k, v) {
		size_t i;
		for (i = 0; i < n && strcmp(k, allowed[i]) != 0; i++) {
		}
		if (i == n) {
			fail_msg("%s: unknown key '%s' in the case",
			    cases_name(row), k);
		}
	}
	if (json_string_value(json_object_get(row, "case")) == NULL) {
		fail_msg("a case without \"case\"");
	}
}

int
cases_run(const char *group, const char *path, json_t **data,
    const struct cases_section *sections, size_t n_sections,
    const struct CMUnitTest *fixed, size_t n_fixed,
    CMFixtureFunction setup)
{
	struct CMUnitTest *tests = NULL;
	size_t n = 0, total = n_fixed;
	char **names = NULL;
	json_error_t jerr;
	int rc = 2;

	*data = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (*data == NULL) {
		fprintf(stderr, "%s:%d: %s\n", path, jerr.line, jerr.text);
		return 2;
	}
	for (size_t s = 0; s < n_sections; s++) {
		const json_t *rows = json_object_get(*data, sections[s].key);
		if (json_array_size(rows) == 0) {
			fprintf(stderr, "%s: no \"%s\" cases\n", path,
			    sections[s].key);
			goto done;
		}
		total += json_array_size(rows);
	}
	tests = calloc(total, sizeof(*tests));
	names = calloc(total, sizeof(*names));
	if (tests == NULL || names == NULL) {
		goto done;
	}
	for (size_t s = 0; s < n_sections; s++) {
		const json_t *rows = json_object_get(*data, sections[s].key);
		size_t i;
		json_t *row;
		json_array_foreach((json_t *)rows, i, row) {
			size_t len = strlen(sections[s].label) +
			    strlen(cases_name(row)) + 3;
			names[n] = malloc(len);
			if (names[n] == NULL) {
				goto done;
			}
			snprintf(names[n], len, "%s: %s", sections[s].label,
			    cases_name(row));
			tests[n] = (struct CMUnitTest){ .name = names[n],
			    .test_func = sections[s].fn, .initial_state = row };
			n++;
		}
	}
	for (size_t i = 0; i < n_fixed; i++) {
		tests[n++] = fixed[i];
	}
	rc = _cmocka_run_group_tests(group, tests, n, setup, NULL);
done:
	for (size_t i = 0; names != NULL && i < total; i++) {
		free(names[i]);
	}
	free(names);
	free(tests);
	json_decref(*data);
	*data = NULL;
	return rc;
}
