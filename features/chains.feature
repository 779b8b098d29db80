@mandatory
Feature: CA chains and truststore bundles
  Trust comes from the certificates in the truststore bundle: CAs (then any
  certificate they issue is accepted) or self-signed client certificates
  listed one by one. Chains must be complete, and not too long for the
  configured verify depth.

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the load balancer requires client certificates

  @C5
  Scenario Outline: Trust is by CA, not by identity: any leaf of the intermediate passes (<name>)
    Given the truststore holds "Partner Issuing CA", "Partner Root CA"
    And a client certificate "<name>" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "<name>"
    Then the response status is 200
    And the response is the product list

    Examples: the partner the target trusts
      | name           |
      | partner-a      |

    @new-leaves
    Examples: another partner under the same CA
      | name           |
      | someone-else   |

  @C5
  Scenario: The truststore order does not matter
    Given the truststore holds "Partner Root CA", "Partner Issuing CA"
    And a client certificate "partner-a" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a"
    Then the response status is 200

  @C6 @C4 @reconfigures
  Scenario Outline: Every client listed in a concatenated truststore is accepted (<name>)
    Given a self-signed client certificate "client-1"
    And a self-signed client certificate "client-2"
    And a self-signed client certificate "client-3"
    And the truststore holds "client-1", "client-2", "client-3"
    When the partner calls GET /dev-portal-xapi/products with the certificate "<name>"
    Then the response status is 200
    And the response is the product list

    Examples:
      | name     |
      | client-1 |
      | client-2 |
      | client-3 |

  @C6 @C2 @reconfigures @backend-view
  Scenario: A client not listed in the concatenated truststore is refused
    Given a self-signed client certificate "client-1"
    And a self-signed client certificate "client-2"
    And a self-signed client certificate "client-3"
    And a self-signed client certificate "client-unlisted"
    And the truststore holds "client-1", "client-2", "client-3"
    When the partner calls GET /dev-portal-xapi/products with the certificate "client-unlisted"
    Then the partner is refused
    And the backend received no request

  @C7 @pitfall @reconfigures @backend-view
  Scenario: Pitfall: truststore without the intermediate, client sends only its leaf
    Given the truststore holds "Partner Root CA"
    And a client certificate "partner-a" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a"
    Then the partner is refused
    And the backend received no request

  @C7 @pitfall @reconfigures
  Scenario: Fix: the same client sends its leaf and the intermediate
    Given the truststore holds "Partner Root CA"
    And a client certificate "partner-a" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a" and its chain
    Then the response status is 200
    And the response is the product list

  @C5 @pitfall @reconfigures @id:intermediate-only
  Scenario: Pitfall: a truststore holding only the intermediate trusts nobody
    Given the truststore holds "Partner Issuing CA"
    And a client certificate "partner-a" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a"
    Then the partner is refused

  @C5 @pitfall
  Scenario: Fix: the truststore holds the intermediate and its root
    Given the truststore holds "Partner Issuing CA", "Partner Root CA"
    And a client certificate "partner-a" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a"
    Then the response status is 200

  @C5 @pitfall @reconfigures @new-leaves @backend-view
  Scenario: Pitfall: verify depth 1 is too low for a chain with two intermediates
    Given the "Partner Sub-Issuing CA" is an intermediate CA under the "Partner Issuing CA"
    And the truststore holds "Partner Root CA"
    And the verify depth is 1
    And a client certificate "partner-deep" issued by the "Partner Sub-Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-deep" and its chain
    Then the partner is refused
    And the backend received no request

  @C5 @pitfall @reconfigures @new-leaves
  Scenario: Fix: verify depth 2 accepts the chain with two intermediates
    Given the "Partner Sub-Issuing CA" is an intermediate CA under the "Partner Issuing CA"
    And the truststore holds "Partner Root CA"
    And the verify depth is 2
    And a client certificate "partner-deep" issued by the "Partner Sub-Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-deep" and its chain
    Then the response status is 200
