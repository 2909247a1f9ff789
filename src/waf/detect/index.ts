// usher's own @detectSQLi and @detectXSS (issue #14 point 3): no library, see README.md here.
export { detectSqli } from './sqli.js';
export { detectXss } from './xss.js';
