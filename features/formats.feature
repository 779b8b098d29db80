@mandatory
Feature: Credentials in the formats partners really use
  Partners hold their credentials as a PEM certificate and key, or as a
  PKCS#12 bundle (.p12/.pfx, as Postman users do). Truststores come as PEM
  bundles or .crt files. A public key is not a certificate and is refused
  with a clear error before anything reaches the load balancer.

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the load balancer requires client certificates
    And a client certificate "partner-a" issued by the "Partner Issuing CA"

  @C16
  Scenario: A partner using PEM certificate and key files gets the product list
    Given the truststore holds "Partner Issuing CA", "Partner Root CA"
    When the partner calls GET /dev-portal-xapi/products with the PEM files of "partner-a"
    Then the response status is 200
    And the response is the product list

  @C16
  Scenario: A partner using a PKCS#12 bundle gets the product list
    Given the truststore holds "Partner Issuing CA", "Partner Root CA"
    When the partner calls GET /dev-portal-xapi/products with the PKCS#12 bundle of "partner-a"
    Then the response status is 200
    And the response is the product list

  @C16 @new-leaves
  Scenario: An RSA key works as well as the default ECDSA one
    Given the truststore holds "Partner Issuing CA", "Partner Root CA"
    And a client certificate "partner-rsa" with an RSA key issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the PKCS#12 bundle of "partner-rsa"
    Then the response status is 200

  @C16
  Scenario: A truststore delivered as DER .crt files is accepted
    Given the truststore is read from .crt files of "Partner Issuing CA", "Partner Root CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a"
    Then the response status is 200

  @C16
  Scenario: A public key where a certificate belongs is refused with a clear error
    When the operator adds a file holding the public key of "partner-a" to the truststore
    Then it is refused with an error saying "public key (BEGIN PUBLIC KEY)"
    And the error says "ask for the certificate itself"

  @C16
  Scenario: A PKCS#12 bundle with the wrong password is refused with a clear error
    When the partner's PKCS#12 bundle of "partner-a" is opened with the wrong password
    Then it is refused with an error saying "wrong password"
