// The service both ends share: one unary method, JSON messages (a .proto
// file and @grpc/proto-loader work the same way).
const grpc = require('@grpc/grpc-js');

const json = {
  serialize: (value) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes) => JSON.parse(bytes.toString()),
};

const service = {
  sayHello: {
    path: '/greeter.Greeter/SayHello',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

module.exports = { service, Greeter: grpc.makeGenericClientConstructor(service, 'Greeter') };
