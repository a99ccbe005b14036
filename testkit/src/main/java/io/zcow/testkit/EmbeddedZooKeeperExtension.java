package io.zcow.testkit;

import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * Gives a test class the JVM's shared {@link EmbeddedZooKeeper}: starts it before the class and
 * injects it into constructor, lifecycle and test method parameters of that type. The server
 * outlives the class; tests must not stop it, and work under their own {@code uniquePath}.
 */
public final class EmbeddedZooKeeperExtension implements BeforeAllCallback, ParameterResolver {

  @Override
  public void beforeAll(ExtensionContext context) {
    EmbeddedZooKeeper.shared();
  }

  @Override
  public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
    return parameter.getParameter().getType() == EmbeddedZooKeeper.class;
  }

  @Override
  public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
    return EmbeddedZooKeeper.shared();
  }
}
