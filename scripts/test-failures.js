// A test reporter for scripts/run-tests.js: one JSON line per failed test (file, name, nesting,
// kind, the error's first lines), so that the run can end with a list of what failed. CI keeps
// only the tail of a run's output, where a failure hundreds of TAP lines up is out of sight.
export default async function* failures(source) {
  for await (const event of source) {
    if (event.type !== 'test:fail') continue;
    const { name, file, nesting, details } = event.data;
    const error = details?.error;
    const message = String(error?.cause?.message ?? error?.message ?? '').split('\n').slice(0, 3).join(' | ');
    yield `${JSON.stringify({ file, name, nesting, kind: error?.failureType, message: message.slice(0, 400) })}\n`;
  }
}
