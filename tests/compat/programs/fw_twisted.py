"""twisted: its epoll reactor, a TCP echo server and a client protocol."""
from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import protocol, reactor  # noqa: E402


class Upper(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data.upper())


class Client(protocol.Protocol):
    def connectionMade(self):
        self.got = b""
        self.transport.write(b"hello twisted\n" * 1000)

    def dataReceived(self, data):
        self.got += data
        if len(self.got) >= 14000:
            print(self.got[:14], len(self.got))
            self.transport.loseConnection()

    def connectionLost(self, reason):
        reactor.stop()


factory = protocol.ServerFactory()
factory.protocol = Upper
port = reactor.listenTCP(0, factory, interface="127.0.0.1")
protocol.ClientCreator(reactor, Client).connectTCP("127.0.0.1", port.getHost().port)
reactor.callLater(20, reactor.stop)
reactor.run()
print("done")
