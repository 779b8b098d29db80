@optional
Feature: Optional mode passes every caller on and says how verification went
  A load balancer with optional client certificates lets every request
  through and tells the API behind it, in X-SSL-Client-Verify, whether the
  caller presented a trusted certificate (SUCCESS), an untrusted one (FAILED)
  or none (NONE).

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the "Unknown Root CA" is a root CA
    And the load balancer accepts client certificates optionally
    And the truststore holds "Partner Issuing CA", "Partner Root CA"

  @C8
  Scenario: A caller without a certificate gets the product list
    When the partner calls GET /dev-portal-xapi/products without a certificate
    Then the response status is 200
    And the response is the product list

  @C8 @backend-view
  Scenario: A caller without a certificate reaches the API marked NONE
    When the partner calls GET /echo without a certificate
    Then the response status is 200
    And the backend saw exactly these client-certificate headers:
      | X-SSL-Client-Verify | NONE |

  @C9
  Scenario: A caller with a trusted certificate gets the product list
    Given a client certificate "partner-a" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a"
    Then the response status is 200
    And the response is the product list

  @C9 @backend-view
  Scenario: A caller with a trusted certificate reaches the API marked SUCCESS
    Given a client certificate "partner-a" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a"
    Then the response status is 200
    And every request the backend received carries X-SSL-Client-Verify "SUCCESS"

  @C10
  Scenario Outline: A caller with an untrusted certificate still gets the product list: <case>
    Given <definition>
    When the partner calls GET /dev-portal-xapi/products with the certificate "<name>"
    Then the response status is 200
    And the response is the product list

    Examples:
      | case                       | name          | definition                                                      |
      | issued by an unknown CA    | stranger      | a client certificate "stranger" issued by the "Unknown Root CA" |
      | self-signed and not listed | self-stranger | a self-signed client certificate "self-stranger"                |

  @C10 @backend-view
  Scenario Outline: A caller with an untrusted certificate reaches the API marked exactly FAILED: <case>
    Given <definition>
    When the partner calls GET /echo with the certificate "<name>"
    Then the response status is 200
    And every request the backend received carries X-SSL-Client-Verify "FAILED"

    Examples:
      | case                       | name          | definition                                                      |
      | issued by an unknown CA    | stranger      | a client certificate "stranger" issued by the "Unknown Root CA" |
      | self-signed and not listed | self-stranger | a self-signed client certificate "self-stranger"                |

  @C11 @new-leaves
  Scenario: A caller with an expired certificate still gets the product list
    Given an expired client certificate "partner-old" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-old"
    Then the response status is 200
    And the response is the product list

  @C11 @new-leaves @backend-view
  Scenario: A caller with an expired certificate reaches the API marked FAILED
    Given an expired client certificate "partner-old" issued by the "Partner Issuing CA"
    When the partner calls GET /echo with the certificate "partner-old"
    Then the response status is 200
    And every request the backend received carries X-SSL-Client-Verify "FAILED"
