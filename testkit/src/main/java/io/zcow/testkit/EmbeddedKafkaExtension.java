package io.zcow.testkit;

import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * Gives a test class the JVM's shared {@link EmbeddedKafka}: starts it before the class (so a
 * broker that cannot start fails the class, not its first test) and injects it into constructor,
 * lifecycle and test method parameters of type {@link EmbeddedKafka} or {@link KafkaFixture}.
 *
 * <pre>{@code
 * @ExtendWith(EmbeddedKafkaExtension.class)
 * class TaskQueueTest {
 *   @Test
 *   void deliversTask(EmbeddedKafka kafka) {
 *     String topic = kafka.uniqueName("tasks");
 *     kafka.createTopic(topic, 1, Map.of());
 *     ...
 * }</pre>
 *
 * The broker outlives the class; tests must not stop it, and use unique topic and group names.
 */
public final class EmbeddedKafkaExtension implements BeforeAllCallback, ParameterResolver {

  @Override
  public void beforeAll(ExtensionContext context) {
    EmbeddedKafka.shared();
  }

  @Override
  public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
    Class<?> type = parameter.getParameter().getType();
    return type == EmbeddedKafka.class || type == KafkaFixture.class;
  }

  @Override
  public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
    return EmbeddedKafka.shared();
  }
}
