@mandatory
Feature: Mandatory mode refuses every caller without a trusted certificate
  A load balancer that requires client certificates answers a caller that
  presents none, or one it does not trust, with HTTP 400 and never passes the
  request on. A trusted caller gets the product list. What the caller sees
  and what the backend received are separate scenarios, so a live target
  without an echo backend still has its answers checked.

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the "Unknown Root CA" is a root CA
    And the load balancer requires client certificates
    And the truststore holds "Partner Issuing CA", "Partner Root CA"

  @C1
  Scenario: A caller without a certificate gets the 400 page
    When the partner calls GET /dev-portal-xapi/products without a certificate
    Then the response status is 400
    And the page says "400 Bad Request"
    And the page says "No required SSL certificate was sent"

  @C1 @backend-view
  Scenario: A caller without a certificate never reaches the API
    When the partner calls GET /dev-portal-xapi/products without a certificate
    Then the partner is refused
    And the backend received no request

  @C2
  Scenario Outline: A caller with an untrusted certificate is refused: <case>
    Given <definition>
    When the partner calls GET /dev-portal-xapi/products with the certificate "<name>"
    Then the partner is refused

    Examples:
      | case                        | name           | definition                                                             |
      | issued by an unknown CA     | stranger       | a client certificate "stranger" issued by the "Unknown Root CA"        |
      | self-signed and not listed  | self-stranger  | a self-signed client certificate "self-stranger"                       |

  @C2 @backend-view
  Scenario Outline: A caller with an untrusted certificate never reaches the API: <case>
    Given <definition>
    When the partner calls GET /dev-portal-xapi/products with the certificate "<name>"
    Then the partner is refused
    And the backend received no request

    Examples:
      | case                        | name           | definition                                                             |
      | issued by an unknown CA     | stranger       | a client certificate "stranger" issued by the "Unknown Root CA"        |
      | self-signed and not listed  | self-stranger  | a self-signed client certificate "self-stranger"                       |

  @C3 @new-leaves
  Scenario Outline: A trusted but <case> certificate is refused
    Given <definition>
    When the partner calls GET /dev-portal-xapi/products with the certificate "<name>"
    Then the partner is refused

    Examples:
      | case          | name          | definition                                                                        |
      | expired       | partner-old   | an expired client certificate "partner-old" issued by the "Partner Issuing CA"     |
      | not yet valid | partner-early | a not yet valid client certificate "partner-early" issued by the "Partner Issuing CA" |

  @C3 @new-leaves @backend-view
  Scenario Outline: A trusted but <case> certificate never reaches the API
    Given <definition>
    When the partner calls GET /dev-portal-xapi/products with the certificate "<name>"
    Then the partner is refused
    And the backend received no request

    Examples:
      | case          | name          | definition                                                                        |
      | expired       | partner-old   | an expired client certificate "partner-old" issued by the "Partner Issuing CA"     |
      | not yet valid | partner-early | a not yet valid client certificate "partner-early" issued by the "Partner Issuing CA" |

  @C17 @new-leaves
  Scenario: A certificate whose extended key usage allows only serverAuth is refused
    Given a serverAuth-only client certificate "partner-server-eku" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-server-eku"
    Then the partner is refused

  @C17 @new-leaves @backend-view
  Scenario: A certificate whose extended key usage allows only serverAuth never reaches the API
    Given a serverAuth-only client certificate "partner-server-eku" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-server-eku"
    Then the partner is refused
    And the backend received no request

  @C5
  Scenario: A trusted CA-signed certificate gets the product list
    Given a client certificate "partner-a" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a"
    Then the response status is 200
    And the response is the product list

  @C12 @backend-view
  Scenario: Every request of a trusted caller reaches the API marked SUCCESS
    Given a client certificate "partner-a" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a"
    Then the response status is 200
    And every request the backend received carries X-SSL-Client-Verify "SUCCESS"
