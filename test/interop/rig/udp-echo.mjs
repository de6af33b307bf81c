// A UDP echo for hosts on a lab LAN: `node udp-echo.mjs PORT` answers every datagram with "echo " and the
// datagram, from the port it was sent to, so a client behind a subnet router can check each round trip.
import dgram from 'node:dgram';

const port = Number(process.argv[2]);
const sock = dgram.createSocket('udp4');
sock.on('message', (msg, rinfo) =>
  sock.send(Buffer.concat([Buffer.from('echo '), msg]), rinfo.port, rinfo.address),
);
sock.bind(port, '0.0.0.0', () => console.log(`udp echo on 0.0.0.0:${port}`));
process.on('SIGTERM', () => sock.close(() => process.exit(0)));
