// WebSocket echo origin for the websocket scenario: every message goes straight back.
// Usage: node bench/tools/ws-echo-origin.js --port PORT
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({ options: { port: { type: 'string' } } });
const server = new WebSocketServer({ host: '127.0.0.1', port: Number(values.port), perMessageDeflate: false });
server.on('connection', (socket) => {
  socket.on('error', () => socket.terminate());
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
});
server.on('listening', () => console.log(`ws echo origin on ${values.port}`));
