Feature: Every refusal holds for TLS 1.2 and for TLS 1.3 clients
  Partners' clients speak TLS 1.2 or TLS 1.3, and the two refuse a client
  certificate at different moments: under TLS 1.2 the handshake fails, under
  TLS 1.3 the client has finished its side of the handshake before the
  server checks the certificate, so a refusal by alert arrives on the first
  read. Each refusal of Mandatory mode (C1, C2, C3, C7, C15, C17) must hold
  for both, and a trusted caller must get through on both, which proves the
  balancer speaks the version at all, in either mode.

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the "Unknown Root CA" is a root CA
    And a client certificate "partner-a" issued by the "Partner Issuing CA"
    And a client certificate "stranger" issued by the "Unknown Root CA"

  @C22 @mandatory
  Scenario Outline: A trusted caller gets the product list over TLS <version>
    Given the load balancer requires client certificates
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a" over TLS <version>
    Then the response status is 200
    And the response is the product list
    And the call used TLS <version>

    @tls12
    Examples: TLS 1.2
      | version |
      | 1.2     |

    @tls13
    Examples: TLS 1.3
      | version |
      | 1.3     |

  @C22 @optional
  Scenario Outline: Optional mode: a trusted caller gets the product list over TLS <version>
    Given the load balancer accepts client certificates optionally
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a" over TLS <version>
    Then the response status is 200
    And the response is the product list
    And the call used TLS <version>

    @tls12
    Examples: TLS 1.2
      | version |
      | 1.2     |

    @tls13
    Examples: TLS 1.3
      | version |
      | 1.3     |

  @C22 @mandatory @backend-view
  Scenario Outline: <refusal> holds over TLS <version>
    Given the load balancer requires client certificates
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    When the partner calls GET /dev-portal-xapi/products <how> over TLS <version>
    Then the partner is refused
    And the backend received no request

    @tls12
    Examples: TLS 1.2
      | refusal                            | version | how                             |
      | C1: no certificate                 | 1.2     | without a certificate           |
      | C2: a certificate of an unknown CA | 1.2     | with the certificate "stranger" |

    @tls13
    Examples: TLS 1.3
      | refusal                            | version | how                             |
      | C1: no certificate                 | 1.3     | without a certificate           |
      | C2: a certificate of an unknown CA | 1.3     | with the certificate "stranger" |

  @C22 @mandatory @new-leaves @backend-view
  Scenario Outline: <refusal> holds over TLS <version>
    Given the load balancer requires client certificates
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    And <definition>
    When the partner calls GET /dev-portal-xapi/products with the certificate "<name>" over TLS <version>
    Then the partner is refused
    And the backend received no request

    @tls12
    Examples: TLS 1.2
      | refusal                           | version | name               | definition                                                                                    |
      | C3: an expired certificate        | 1.2     | partner-old        | an expired client certificate "partner-old" issued by the "Partner Issuing CA"                |
      | C17: a serverAuth-only certificate | 1.2     | partner-server-eku | a serverAuth-only client certificate "partner-server-eku" issued by the "Partner Issuing CA" |

    @tls13
    Examples: TLS 1.3
      | refusal                           | version | name               | definition                                                                                    |
      | C3: an expired certificate        | 1.3     | partner-old        | an expired client certificate "partner-old" issued by the "Partner Issuing CA"                |
      | C17: a serverAuth-only certificate | 1.3     | partner-server-eku | a serverAuth-only client certificate "partner-server-eku" issued by the "Partner Issuing CA" |

  @C22 @mandatory @reconfigures @backend-view
  Scenario Outline: C7: a leaf sent without its intermediate is refused over TLS <version>
    Given the load balancer requires client certificates
    And the truststore holds "Partner Root CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a" over TLS <version>
    Then the partner is refused
    And the backend received no request

    @tls12
    Examples: TLS 1.2
      | version |
      | 1.2     |

    @tls13
    Examples: TLS 1.3
      | version |
      | 1.3     |

  @C22 @mandatory @reconfigures @new-leaves @backend-view
  Scenario Outline: C15: a revoked certificate is refused over TLS <version>
    Given the load balancer requires client certificates
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    And a revoked client certificate "partner-revoked" issued by the "Partner Issuing CA"
    And the CRL bundle holds the CRLs of "Partner Issuing CA", "Partner Root CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-revoked" over TLS <version>
    Then the partner is refused
    And the backend received no request

    @tls12
    Examples: TLS 1.2
      | version |
      | 1.2     |

    @tls13
    Examples: TLS 1.3
      | version |
      | 1.3     |
