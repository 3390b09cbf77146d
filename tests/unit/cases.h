/* cases.h - data-driven cmocka tests: one test per row of a JSON data
 * file, named after the row, so that the TAP output says which row failed.
 * Shared by the unit tests whose cases live in tests/unit/data/. */
#ifndef MILEPOST_TESTS_CASES_H
#define MILEPOST_TESTS_CASES_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

/* The array data[key] of the data file, each row run by fn (its state is
 * the row), named "label: case". */
struct cases_section {
	const char *key;
	const char *label;
	CMUnitTestFunction fn;
};

/* Loads the data file at path into *data (kept alive during the run, for
 * the tests to read other parts of it), runs the sections' rows then the
 * fixed tests as one group with setup, and returns the exit status. A
 * missing or empty section is an error (2): a data file must not shrink
 * unnoticed. */
int cases_run(const char *group, const char *path, json_t **data,
    const struct cases_section *sections, size_t n_sections,
    const struct CMUnitTest *fixed, size_t n_fixed,
    CMFixtureFunction setup);

/* The row's "case" name. */
const char *cases_name(const json_t *row);

/* Fails on keys of row not in allowed, and on a row without "case": a
 * typo in the data file must not turn a check off silently. */
void cases_check_keys(const json_t *row, const char *const *allowed,
    size_t n);

#endif
