/** Exit codes scripts can rely on (docs/errors.md § Exit codes). */
export const EXIT_OK = 0;
export const EXIT_PROBLEMS_FOUND = 1;
export const EXIT_ERROR = 2;
export const EXIT_INTERNAL_ERROR = 3;
